"""gnt-instance: instance administration.

add, remove, list, list-fields, info, startup, shutdown, reboot, console
and the tag commands. Further commands (reinstall, rename, modify,
grow-disk, failover, ...) are added to :data:`commands`.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes, pathutils, utils
from ganeti.cli import selectors
from ganeti.cli import (
    FIELDS_OPT,
    FORCE_FILTER_OPT,
    FORCE_OPT,
    NOHDR_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    UNITS_OPT,
    VERBOSE_OPT,
    ArgInstance,
    ArgUnknown,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.cli.options import (
    AUTO_REPLACE_OPT,
    COMPRESS_OPT,
    DISKIDX_OPT,
    DST_NODE_OPT,
    EARLY_RELEASE_OPT,
    IALLOCATOR_OPT,
    IGNORE_IPOLICY_OPT,
    MIGRATION_MODE_OPT,
    NEW_SECONDARY_OPT,
    NONLIVE_OPT,
    NORUNTIME_CHGS_OPT,
    ON_PRIMARY_OPT,
    ON_SECONDARY_OPT,
    TO_GROUP_OPT,
)
from ganeti.cli.tags import TagCommands
from ganeti.client import instance_batch
from ganeti.client.gnt_node import ParseKeyVal, RunJobList

#: Default fields of "gnt-instance list" (Ganeti's)
_LIST_DEF_FIELDS = ["name", "hypervisor", "os", "pnode", "status", "oper_ram"]


# --- option parsing ---------------------------------------------------------------------

def ParseIdentKeyVal(text: str) -> tuple[str, dict[str, Any]]:
    """``ident:key=value,...`` (``--disk 0:size=1G``, ``--net 0:mac=...``,
    ``-H fake:...``) as (ident, dict); ``ident`` alone gives {}."""
    ident, sep, rest = text.partition(":")
    if not ident:
        raise argparse.ArgumentTypeError(f"invalid value '{text}': missing the"
                                         " identifier before ':'")
    return ident, ParseKeyVal(rest) if sep else {}


def _IndexedSpecs(items: list[tuple[str, dict[str, Any]]], what: str
                  ) -> list[dict[str, Any]]:
    """``[(index, params)]`` as a list ordered by index (0..n-1 each once)."""
    by_index: dict[int, dict[str, Any]] = {}
    for ident, params in items:
        try:
            idx = int(ident)
        except ValueError:
            raise errors.OpPrereqError(f"Invalid {what} index '{ident}': must be a"
                                       " number", errors.ECODE_INVAL) from None
        if idx < 0 or idx in by_index:
            raise errors.OpPrereqError(f"Invalid or duplicate {what} index {idx}",
                                       errors.ECODE_INVAL)
        by_index[idx] = params
    if sorted(by_index) != list(range(len(by_index))):
        raise errors.OpPrereqError(f"{what.capitalize()} indices must be consecutive"
                                   f" from 0, got {sorted(by_index)}", errors.ECODE_INVAL)
    return [by_index[idx] for idx in range(len(by_index))]


def BuildDisks(opts: Any) -> list[dict[str, Any]]:
    """The ``disks`` of OpInstanceCreate from ``--disk`` and ``-s``; a bad
    size (``10X``) gives OpPrereqError naming it."""
    if opts.disks and opts.sd_size is not None:
        raise errors.OpPrereqError("Please use either the '--disk' or the '-s'"
                                   " option", errors.ECODE_INVAL)
    if opts.sd_size is not None:
        specs = [{constants.IDISK_SIZE: opts.sd_size}]
    else:
        specs = _IndexedSpecs(opts.disks or [], "disk")
    result = []
    for idx, spec in enumerate(specs):
        spec = dict(spec)
        if constants.IDISK_SIZE in spec:
            try:
                spec[constants.IDISK_SIZE] = utils.ParseUnit(spec[constants.IDISK_SIZE])
            except errors.UnitParseError as err:
                raise errors.OpPrereqError(f"Invalid disk size for disk {idx}: {err}",
                                           errors.ECODE_INVAL) from None
        elif constants.IDISK_ADOPT not in spec:
            raise errors.OpPrereqError(f"Missing size or adoption source for disk"
                                       f" {idx}", errors.ECODE_INVAL)
        result.append(spec)
    return result


def BuildNics(opts: Any) -> list[dict[str, Any]]:
    """The ``nics`` of OpInstanceCreate: ``--net`` specs, none with
    ``--no-nics``, else one NIC with the cluster's defaults."""
    if opts.no_nics:
        if opts.nics:
            raise errors.OpPrereqError("Cannot specify --net and --no-nics together",
                                       errors.ECODE_INVAL)
        return []
    if not opts.nics:
        return [{}]
    return _IndexedSpecs(opts.nics, "NIC")


def BeParams(opts: Any) -> dict[str, Any]:
    params = dict(opts.beparams or {})
    for key in (constants.BE_MAXMEM, constants.BE_MINMEM, constants.BE_MEMORY):
        if key in params and isinstance(params[key], str):
            try:
                params[key] = utils.ParseUnit(params[key])
            except errors.UnitParseError as err:
                raise errors.OpPrereqError(f"Invalid {key} value: {err}",
                                           errors.ECODE_INVAL) from None
    return params


def HvParams(opts: Any) -> tuple[str | None, dict[str, Any]]:
    hvname = opts.hypervisor
    params: dict[str, Any] = {}
    if opts.hvparams:
        ident, params = opts.hvparams
        if hvname and ident != hvname:
            raise errors.OpPrereqError(f"Hypervisor '{ident}' of -H differs from"
                                       f" --hypervisor {hvname}", errors.ECODE_INVAL)
        hvname = ident
    return hvname, params


# --- add / remove -------------------------------------------------------------------------

def AddInstance(opts: Any, args: list[str]) -> int:
    """Create an instance."""
    if getattr(opts, "src_node", None) or getattr(opts, "src_dir", None):
        # From an export: gnt-backup import
        from ganeti.client import gnt_backup
        return gnt_backup.ImportInstance(opts, args)
    hvname, hvparams = HvParams(opts)
    # -n PRIMARY[:SECONDARY], as Ganeti's
    pnode, snode = (opts.node.split(":", 1) + [None])[:2] if opts.node else (None, None)
    op = opcodes.OpInstanceCreate(
        instance_name=args[0], mode=constants.INSTANCE_CREATE,
        disk_template=opts.disk_template, disks=BuildDisks(opts), nics=BuildNics(opts),
        pnode=pnode, snode=snode or None, iallocator=opts.iallocator, os_type=opts.os,
        osparams=opts.osparams or {}, beparams=BeParams(opts), hypervisor=hvname,
        hvparams=hvparams, start=opts.start, no_install=opts.no_install,
        name_check=opts.name_check, ip_check=opts.ip_check,
        file_storage_dir=opts.file_storage_dir, file_driver=opts.file_driver,
        force_variant=opts.force_variant, ignore_ipolicy=opts.ignore_ipolicy,
        tags=[tag for tag in (opts.tags or "").split(",") if tag],
        group_name=opts.nodegroup, wait_for_sync=opts.wait_for_sync,
        conflicts_check=opts.conflicts_check, forthcoming=opts.forthcoming,
        commit=opts.commit, instance_communication=opts.instance_communication,
        osparams_private=opts.osparams_private or {},
        osparams_secret=opts.osparams_secret or {})
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RemoveInstance(opts: Any, args: list[str]) -> int:
    """Remove an instance (asks for confirmation without --force)."""
    name = args[0]
    if not opts.force:
        usertext = (f"This will remove the volumes of the instance {name} (including"
                    " mirrors), thus removing all the data of the instance."
                    " Continue?")
        if not cli.AskUser(usertext):
            return constants.EXIT_CONFIRMATION
    op = opcodes.OpInstanceRemove(instance_name=name,
                                  ignore_failures=opts.ignore_failures,
                                  shutdown_timeout=opts.shutdown_timeout)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- list / info ---------------------------------------------------------------------------

def _FormatList(value: Any) -> str:
    return ",".join(str(item) for item in value) if value else ""


#: List-valued fields shown comma-separated (Ganeti's set, plus a few of ours)
_LIST_FORMAT = {
    **dict.fromkeys(["tags", "snodes", "snodes.group", "snodes.group.uuid",
                     "nic.macs", "nic.modes", "nic.links", "nic.bridges", "nic.networks",
                     "nic.names", "nic.uuids", "disk.sizes", "disk.spindles",
                     "disk.names", "disk.uuids"], (_FormatList, False)),
    "nic.ips": (lambda v: ",".join(str(i) if i else "-" for i in v or []), False),
}


#: List instances with the selected fields
ListInstances = cli.ListCommand(constants.QR_INSTANCE, _LIST_DEF_FIELDS, _LIST_FORMAT)
#: Describe the instance fields
ListInstanceFields = cli.ListFieldsCommand(constants.QR_INSTANCE)


def _DevStatus(status: dict[str, Any]) -> str:
    """Ganeti's one-line device status: path, numbers, sync state, health."""
    text = f"{status.get('dev_path')} ({status.get('major')}:{status.get('minor')})"
    percent = status.get("sync_percent")
    if percent is not None:
        eta = status.get("estimated_time")
        text += f", {percent:.2f}% done, ETA " + (f"{eta}s" if eta is not None
                                                  else "unknown")
    elif status.get("ldisk_status") is not None:
        text += ", in sync"
    degraded = status.get("is_degraded") or (status.get("ldisk_status") or 1) > 1
    return text + (", status *DEGRADED*" if degraded else ", status ok")


def _LogicalIdItems(disk: dict[str, Any]) -> list[tuple[str, Any]]:
    logical_id = disk.get("logical_id") or []
    dev_type = disk.get("dev_type")
    if dev_type in constants.DTS_FILEBASED and len(logical_id) == 2:
        return [("file driver", logical_id[0]), ("file path", logical_id[1])]
    if dev_type == constants.DT_PLAIN and len(logical_id) == 2:
        return [("logical_id", f"{logical_id[0]}/{logical_id[1]}")]
    if dev_type == constants.DT_DRBD8 and len(logical_id) == 6:
        nodes = disk.get("drbd_nodes") or logical_id[:2]
        return [("nodeA", f"{nodes[0]}, minor={logical_id[3]}"),
                ("nodeB", f"{nodes[1]}, minor={logical_id[4]}"),
                ("port", logical_id[2])]
    if len(logical_id) == 2:
        return [("logical_id", f"{logical_id[0]}:{logical_id[1]}")]
    return []


def _DiskItems(disk: dict[str, Any]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [
        ("name", disk.get("name")), ("UUID", disk.get("uuid")),
        ("size", utils.FormatUnit(disk.get("size") or 0, "h")),
        ("mode", disk.get("mode")), ("type", disk.get("dev_type")),
    ]
    items += _LogicalIdItems(disk)
    for key, label in (("pstatus", "on primary"), ("sstatus", "on secondary")):
        status = disk.get(key)
        if isinstance(status, dict):
            items.append((label, _DevStatus(status)))
        elif status is None and key in disk and (key == "pstatus" or
                                                 disk.get("dev_type") in
                                                 constants.DTS_INT_MIRROR):
            items.append((label, "unknown (static data or node not answering)"))
    children = disk.get("children") or []
    if children:
        items.append(("child devices", [(f"child {idx}", _DiskItems(child))
                                        for idx, child in enumerate(children)]))
    return items


_ROMAN_DIGITS = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"),
                 (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"),
                 (4, "IV"), (1, "I")]


def ToRoman(value: Any) -> Any:
    """A whole number from 1 to 4999 in Roman numerals; anything else as is."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 5000:
        return value
    text = ""
    for amount, digits in _ROMAN_DIGITS:
        count, value = divmod(value, amount)
        text += digits * count
    return text


def InstanceInfoItems(data: dict[str, Any], roman: bool = False
                      ) -> list[tuple[str, Any]]:
    """The "info" layout of one instance (Ganeti's order and labels);
    ``roman`` shows the serial number and network port in Roman numerals."""
    num = ToRoman if roman else (lambda value: value)
    run_state = data.get("run_state") or "unknown"
    bep, hvp = data.get("be_actual") or {}, data.get("hv_actual") or {}
    nics = [(f"nic/{idx}", [("MAC", nic.get("mac")), ("IP", nic.get("ip")),
                            ("mode", nic.get("mode")), ("link", nic.get("link")),
                            ("network", nic.get("network")), ("UUID", nic.get("uuid")),
                            ("name", nic.get("name"))])
            for idx, nic in enumerate(data.get("nics") or [])]
    disks = [(f"disk/{idx}", _DiskItems(disk))
             for idx, disk in enumerate(data.get("disks") or [])]
    return [
        ("Instance name", data["name"]),
        ("UUID", data.get("uuid")),
        ("Serial number", num(data.get("serial_no"))),
        ("Creation time", utils.FormatTime(data.get("ctime"))),
        ("Modification time", utils.FormatTime(data.get("mtime"))),
        ("State", f"configured to be {data.get('config_state')}, actual state is"
                  f" {run_state}"),
        ("Nodes", [("primary", data.get("pnode")),
                   ("group", data.get("pnode_group_name")),
                   ("secondaries", ", ".join(data.get("snodes") or []))]),
        ("Operating system", data.get("os")),
        ("Operating system parameters",
         cli.FormatParamsDictInfo(data.get("os_instance") or {}, data.get("os_actual") or {})),
        ("Allocated network port", num(data.get("network_port"))),
        ("Hypervisor", data.get("hypervisor")),
        ("Hypervisor parameters", cli.FormatParamsDictInfo(data.get("hv_instance") or {}, hvp)),
        ("Back-end parameters", cli.FormatParamsDictInfo(data.get("be_instance") or {}, bep)),
        ("NICs", nics),
        ("Disk template", data.get("disk_template")),
        ("Disks", disks),
    ]


def ShowInstanceConfig(opts: Any, args: list[str]) -> int:
    """Show detailed information about instances."""
    if not args and not opts.show_all:
        ToStderr("No instance selected. Please pass in --all if you want to query"
                 " all instances.\nNote that this can take a long time on a big"
                 " cluster.")
        return constants.EXIT_FAILURE
    if args and opts.show_all:
        ToStderr("Cannot use --all if you specify instance names.")
        return constants.EXIT_FAILURE
    op = opcodes.OpInstanceQueryData(instances=args, static=opts.static,
                                     use_locking=not opts.static)
    result = cli.SubmitOpCode(op, opts=opts)
    if not result:
        ToStdout("No instances.")
        return constants.EXIT_FAILURE
    cli.PrintGenericInfo([InstanceInfoItems(result[name], roman=opts.roman_integers)
                          for name in utils.NiceSort(result)])
    return constants.EXIT_SUCCESS


# --- startup / shutdown / reboot / console -------------------------------------------------

def _StartupOp(name: str, opts: Any) -> opcodes.OpInstanceStartup:
    """The startup opcode of one instance."""
    return opcodes.OpInstanceStartup(
        instance_name=name, force=opts.force, hvparams=opts.temp_hvparams or {},
        beparams=BeParams(opts), no_remember=opts.no_remember,
        startup_paused=opts.startup_paused, ignore_offline_nodes=opts.ignore_offline)


def _ShutdownOp(name: str, opts: Any) -> opcodes.OpInstanceShutdown:
    """The shutdown opcode of one instance."""
    return opcodes.OpInstanceShutdown(
        instance_name=name, timeout=opts.timeout, no_remember=opts.no_remember,
        ignore_offline_nodes=opts.ignore_offline, force=opts.force)


def _RebootOp(name: str, opts: Any) -> opcodes.OpInstanceReboot:
    """The reboot opcode of one instance."""
    return opcodes.OpInstanceReboot(
        instance_name=name, reboot_type=opts.reboot_type,
        shutdown_timeout=opts.shutdown_timeout,
        ignore_secondaries=opts.ignore_secondaries)


#: Start, stop or reboot the selected instances (see ganeti.cli.selectors)
StartupInstance = selectors.GenericManyOps("startup", _StartupOp)
ShutdownInstance = selectors.GenericManyOps("shutdown", _ShutdownOp)
RebootInstance = selectors.GenericManyOps("reboot", _RebootOp)


def FormatConsole(console: dict[str, Any]) -> str:
    """What to tell the user about a console (its command, for ssh)."""
    kind = console.get("kind")
    if kind == constants.CONS_MESSAGE:
        return str(console.get("message"))
    if kind == constants.CONS_SSH:
        command = utils.ShellQuoteArgs(console.get("command") or [])
        if pathutils.IsVirtualCluster():
            # Every node of a virtual cluster is this machine: no ssh
            return command
        return " ".join(["ssh", "-t", f"{console.get('user')}@{console.get('host')}",
                         shlex.quote(command)])
    if kind in (constants.CONS_VNC, constants.CONS_SPICE):
        return (f"Instance {console.get('instance')} has {kind} listening on"
                f" {console.get('host')}:{console.get('port')}")
    raise errors.GenericError(f"Unknown console type '{kind}'")


def ConnectToInstanceConsole(opts: Any, args: list[str]) -> int:
    """Tell how to reach the console (the fake hypervisor has none)."""
    op = opcodes.OpInstanceConsole(instance_name=args[0])
    console = cli.SubmitOpCode(op, opts=opts)
    kind = console.get("kind")
    if kind == constants.CONS_MESSAGE:
        ToStderr("%s", console.get("message"))
        return constants.EXIT_FAILURE
    text = FormatConsole(console)
    if opts.show_command or kind != constants.CONS_SSH:
        ToStdout("%s", text)
        return constants.EXIT_SUCCESS
    import subprocess
    return subprocess.call(text, shell=True)


# --- reinstall / rename ---------------------------------------------------------------------

def _SelectOs(opts: Any) -> str | None:
    """List the valid OSes numbered and read the choice from stdin; None
    if the user aborts (or there is nothing to read)."""
    from ganeti.client.gnt_os import CalculateOSNames
    op = opcodes.OpOsDiagnose(output_fields=["name", "variants"], names=[])
    result = cli.SubmitOpCode(op, opts=opts)
    if not result:
        ToStderr("Can't get the OS list")
        return None
    names = [entry for name, variants in result
             for entry in CalculateOSNames(name, variants)]
    ToStdout("Available OS templates:")
    for number, entry in enumerate(names):
        ToStdout("%3s: %s", number, entry)
    import sys
    while True:
        ToStdout("Enter OS template number (or x to abort):")
        line = sys.stdin.readline()
        if not line:
            return None
        answer = line.strip().lower()
        if answer == "x":
            return None
        if answer.isdigit() and int(answer) < len(names):
            return names[int(answer)]
        ToStderr("Invalid choice '%s': enter a number from 0 to %s, or x",
                 answer, len(names) - 1)


def ReinstallInstance(opts: Any, args: list[str]) -> int:
    """Reinstall the OS of the selected instances (asks for confirmation
    without --force, or --force-multiple for several instances)."""
    cl = cli.GetClient()
    names = selectors.ExpandMultiNames(opts.multi_mode, args, cl=cl)
    if not names:
        raise errors.OpPrereqError("Selection filter does not match any instances",
                                   errors.ECODE_INVAL)
    if opts.select_os:
        if opts.os:
            ToStderr("Use either -o/--os-type or --select-os, not both")
            return constants.EXIT_FAILURE
        os_name = _SelectOs(opts)
        if os_name is None:
            ToStderr("User aborted reinstall, exiting")
            return constants.EXIT_FAILURE
        os_msg = f"change the OS to '{os_name}'"
    else:
        os_name = opts.os
        os_msg = f"change the OS to '{os_name}'" if os_name else "keep the same OS"
    multi = selectors.IsMulti(opts, names)
    if multi:
        # Several instances need --force-multiple: --force alone is not enough
        warning = (f"Note: this will remove *all* data for the below instances!"
                   f" It will {os_msg}.\n")
        if not opts.force_multi and not selectors.ConfirmOperation(
                names, "instances", "reinstall", extra=warning):
            return constants.EXIT_FAILURE
    elif not (opts.force or opts.force_multi):
        usertext = (f"This will reinstall the instance '{names[0]}' (and {os_msg}) and"
                    " remove all data. Continue?")
        if not cli.AskUser(usertext):
            ToStderr("Reinstall of instance %s not confirmed (use -f/--force to skip"
                     " the question)", names[0])
            return constants.EXIT_CONFIRMATION

    def _Op(name: str, opts: Any) -> opcodes.OpInstanceReinstall:
        return opcodes.OpInstanceReinstall(
            instance_name=name, os_type=os_name, force_variant=opts.force_variant,
            osparams=opts.osparams, osparams_private=opts.osparams_private,
            osparams_secret=opts.osparams_secret)
    return selectors.RunManyOps(names, _Op, opts, cl=cl, verbose=multi)


def RenameInstance(opts: Any, args: list[str]) -> int:
    """Rename an instance."""
    name_check = opts.name_check
    # --no-name-check alone also turns the IP check off (it needs the name)
    ip_check = name_check if opts.ip_check is None else opts.ip_check
    op = opcodes.OpInstanceRename(instance_name=args[0], new_name=args[1],
                                  name_check=name_check, ip_check=ip_check)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- modify ---------------------------------------------------------------------------------

_MISSING = object()


def _ModIdent(ident: str) -> int | str:
    """A device identifier: an index (``-1`` the last) or a name/UUID."""
    if ident.lstrip("-").isdigit():
        return int(ident)
    return ident


def ConvertNicDiskModifications(mods: list[tuple[str, dict[str, Any]]], what: str
                                ) -> list[tuple[str, int | str, dict[str, Any]]]:
    """``--disk``/``--net`` values of modify as ``(action, identifier,
    params)``: ``add:params`` and ``remove`` act on the end (identifier
    -1); ``ID:add,params``, ``ID:remove`` and ``ID:modify,params`` (or
    ``ID:params``, a modification) name the position, name or UUID.
    Disks also take ``attach:name=NAME`` (or ``uuid=UUID``), ``detach``,
    ``ID:attach,...`` and ``ID:detach``."""
    result: list[tuple[str, int | str, dict[str, Any]]] = []
    for ident, params in mods:
        params = dict(params)
        ident_value: int | str
        if ident in (constants.DDM_ADD, constants.DDM_REMOVE, constants.DDM_ATTACH,
                     constants.DDM_DETACH):
            action, ident_value = ident, -1
        else:
            ident_value = _ModIdent(ident)
            flags = {name: params.pop(name, _MISSING)
                     for name in (constants.DDM_ADD, constants.DDM_REMOVE,
                                  constants.DDM_MODIFY, constants.DDM_ATTACH,
                                  constants.DDM_DETACH)}
            given = [name for name, value in flags.items() if value is not _MISSING]
            if len(given) > 1:
                raise errors.OpPrereqError(
                    f"Cannot {' and '.join(given)} {what} {ident} at the same time",
                    errors.ECODE_INVAL)
            action = given[0] if given else constants.DDM_MODIFY
        if action in (constants.DDM_ATTACH, constants.DDM_DETACH) and what != "disk":
            raise errors.OpPrereqError(f"Attaching or detaching {what}s is not"
                                       " supported (only disks)", errors.ECODE_INVAL)
        if action in (constants.DDM_REMOVE, constants.DDM_DETACH) and params:
            raise errors.OpPrereqError(
                f"Not accepting parameters on {action.rstrip('e')}ing {what} {ident}:"
                f" {', '.join(sorted(params))}", errors.ECODE_INVAL)
        result.append((action, ident_value, params))
    return result


def _ModifyDisks(opts: Any) -> list[tuple[str, int | str, dict[str, Any]]]:
    mods = ConvertNicDiskModifications(opts.disks or [], "disk")
    for action, ident, params in mods:
        if action == constants.DDM_ADD and constants.IDISK_SIZE not in params:
            raise errors.OpPrereqError(f"Missing size for the disk to add ({ident})",
                                       errors.ECODE_INVAL)
        if constants.IDISK_SIZE in params:
            try:
                params[constants.IDISK_SIZE] = utils.ParseUnit(params[constants.IDISK_SIZE])
            except errors.UnitParseError as err:
                raise errors.OpPrereqError(
                    f"Invalid disk size '{params[constants.IDISK_SIZE]}' for disk"
                    f" {ident}: {err}", errors.ECODE_INVAL) from None
    return mods


def _DefaultValues(params: dict[str, Any] | None) -> dict[str, Any]:
    """Parameters with ``default`` (any case) as the reset value."""
    return {key: constants.VALUE_DEFAULT
            if isinstance(value, str) and value.lower() == constants.VALUE_DEFAULT
            else value for key, value in (params or {}).items()}


def SetInstanceParams(opts: Any, args: list[str]) -> int:
    """Modify an instance's parameters, disks, NICs or offline state."""
    if not (opts.nics or opts.disks or opts.disk_template or opts.hvparams or
            opts.beparams or opts.os or opts.osparams or opts.osparams_private or
            opts.offline_inst or opts.online_inst or opts.runtime_mem or
            opts.new_primary_node or opts.ext_params or
            opts.instance_communication is not None):
        ToStderr("Please give at least one of the parameters.")
        return constants.EXIT_FAILURE
    if opts.offline_inst and opts.online_inst:
        ToStderr("Use either --offline or --online, not both")
        return constants.EXIT_FAILURE
    beparams = _DefaultValues(opts.beparams)
    for key in (constants.BE_MAXMEM, constants.BE_MINMEM, constants.BE_MEMORY):
        value = beparams.get(key)
        if isinstance(value, str) and value != constants.VALUE_DEFAULT:
            try:
                beparams[key] = utils.ParseUnit(value)
            except errors.UnitParseError as err:
                raise errors.OpPrereqError(f"Invalid {key} value '{value}': {err}",
                                           errors.ECODE_INVAL) from None
    offline = True if opts.offline_inst else False if opts.online_inst else None
    op = opcodes.OpInstanceSetParams(
        instance_name=args[0], nics=ConvertNicDiskModifications(opts.nics or [], "NIC"),
        disks=_ModifyDisks(opts), disk_template=opts.disk_template,
        hvparams=_DefaultValues(opts.hvparams), beparams=beparams,
        runtime_mem=opts.runtime_mem, os_name=opts.os,
        osparams=_DefaultValues(opts.osparams),
        osparams_private=_DefaultValues(opts.osparams_private),
        force_variant=opts.force_variant, force=opts.force, offline=offline,
        ignore_ipolicy=opts.ignore_ipolicy, hotplug=opts.hotplug == "strict",
        hotplug_if_possible=opts.hotplug == "if-possible", remote_node=opts.node,
        wait_for_sync=opts.wait_for_sync, pnode=opts.new_primary_node,
        ext_params=opts.ext_params or {}, file_storage_dir=opts.file_storage_dir,
        file_driver=opts.file_driver, instance_communication=opts.instance_communication)
    result = cli.SubmitOrSend(op, opts)
    if result:
        ToStdout("Modified instance %s", args[0])
        for param, data in result:
            ToStdout(" - %-5s -> %s", param, data)
        ToStdout("Most parameters take effect at the next (re)start of the instance by"
                 " Ganeti; a restart from inside the instance is not enough.")
    return constants.EXIT_SUCCESS


# --- the command table ---------------------------------------------------------------------

def _Size(text: str) -> int:
    try:
        return utils.ParseUnit(text)
    except errors.UnitParseError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _PositiveOrZero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value '{text}': expected a"
                                         " non-negative integer")
    return value


DISK_TEMPLATE_OPT = cli_option("-t", "--disk-template", dest="disk_template",
                               default=None, metavar="TEMPL",
                               choices=sorted(constants.DISK_TEMPLATES),
                               help="Custom disk setup (diskless, file, sharedfile, ...)")
NODE_PLACEMENT_OPT = cli_option("-n", "--node", dest="node", default=None,
                                metavar="NODE", help="Target node")
def ReplaceDisks(opts: Any, args: list[str]) -> int:
    """Replace the disks of a DRBD instance: on one of its nodes (-p, -s,
    --auto) or by moving its secondary (-n)."""
    disks: list[int] = []
    if opts.disks:
        try:
            disks = [int(part) for part in opts.disks.split(",")]
        except ValueError:
            raise errors.OpPrereqError(
                f"Invalid disk index list '{opts.disks}': expected numbers separated by"
                " commas", errors.ECODE_INVAL) from None
    chosen = [opts.on_primary, opts.on_secondary, opts.auto, opts.dst_node is not None,
              opts.iallocator is not None]
    if chosen.count(True) != 1:
        raise errors.OpPrereqError("One and only one of the -p, -s, -a, -n and -I options"
                                   " must be given", errors.ECODE_INVAL)
    if opts.on_primary:
        mode = constants.REPLACE_DISK_PRI
    elif opts.on_secondary:
        mode = constants.REPLACE_DISK_SEC
    elif opts.auto:
        mode = constants.REPLACE_DISK_AUTO
        if disks:
            raise errors.OpPrereqError("Cannot give disks (--disks) with --auto: it finds"
                                       " the faulty ones", errors.ECODE_INVAL)
    else:
        mode = constants.REPLACE_DISK_CHG
    op = opcodes.OpInstanceReplaceDisks(
        instance_name=args[0], disks=disks, remote_node=opts.dst_node, mode=mode,
        iallocator=opts.iallocator, early_release=opts.early_release,
        ignore_ipolicy=opts.ignore_ipolicy)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


NWSYNC_OPT = cli_option("--no-wait-for-sync", dest="wait_for_sync", default=True,
                        action="store_false", help="Return without waiting for the disks to sync")
OS_OPT = cli_option("-o", "--os-type", dest="os", default=None, metavar="<os>",
                    help="What OS to run (os+variant)")
DISK_OPT = cli_option("--disk", dest="disks", action="append", default=[],
                      type=ParseIdentKeyVal, metavar="<disk_index>:<disk_params>",
                      help="Disk parameters (size=..., mode=rw|ro)")
OS_SIZE_OPT = cli_option("-s", "--os-size", dest="sd_size", default=None,
                         metavar="<size>", help="Disk size of a single-disk instance")
NET_OPT = cli_option("--net", dest="nics", action="append", default=[],
                     type=ParseIdentKeyVal, metavar="<nic_index>:<nic_params>",
                     help="NIC parameters (mac=, ip=, mode=, link=, network=)")
NONICS_OPT = cli_option("--no-nics", dest="no_nics", default=False, action="store_true",
                        help="Create the instance without NICs")
HVOPTS_OPT = cli_option("-H", "--hypervisor-parameters", dest="hvparams", default=None,
                        type=ParseIdentKeyVal, metavar="HYPERVISOR[:PARAMS]",
                        help="Hypervisor and hypervisor options")
HYPERVISOR_OPT = cli_option("--hypervisor", dest="hypervisor", default=None,
                            choices=sorted(constants.HYPER_TYPES),
                            help="Hypervisor of the instance")
BACKEND_OPT = cli_option("-B", "--backend-parameters", dest="beparams", default=None,
                         type=ParseKeyVal, metavar="PARAMS",
                         help="Backend parameters (memory, maxmem, minmem, vcpus, ...)")
OSPARAMS_OPT = cli_option("-O", "--os-parameters", dest="osparams", default=None,
                          type=ParseKeyVal, metavar="PARAMS", help="OS parameters")
NOSTART_OPT = cli_option("--no-start", dest="start", default=True, action="store_false",
                         help="Don't start the instance after creation")
NOINSTALL_OPT = cli_option("--no-install", dest="no_install", default=False,
                           action="store_true",
                           help="Do not install the OS (will disable automatic start)")
NONAMECHECK_OPT = cli_option("--no-name-check", dest="name_check", default=True,
                             action="store_false",
                             help="Don't check that the instance's name is resolvable")
NOIPCHECK_OPT = cli_option("--no-ip-check", dest="ip_check", default=True,
                           action="store_false",
                           help="Don't check that the instance's IP is alive")
FILESTORE_DIR_OPT = cli_option("--file-storage-dir", dest="file_storage_dir",
                               default=None, metavar="<DIR>",
                               help="Relative path under the cluster's file storage"
                               " directory for the disk files")
FILESTORE_DRIVER_OPT = cli_option("--file-driver", dest="file_driver", default=None,
                                  choices=sorted(constants.FILE_DRIVER),
                                  help="Driver to use for image files")
FORCE_VARIANT_OPT = cli_option("--force-variant", dest="force_variant", default=False,
                               action="store_true", help="Force an unknown variant")
IGNORE_FAILURES_OPT = cli_option("--ignore-failures", dest="ignore_failures",
                                 default=False, action="store_true",
                                 help="Remove the instance from the cluster"
                                 " configuration even if there are failures")
SHUTDOWN_TIMEOUT_OPT = cli_option("--shutdown-timeout", dest="shutdown_timeout",
                                  type=_PositiveOrZero,
                                  default=constants.DEFAULT_SHUTDOWN_TIMEOUT,
                                  help="Maximum time to wait for instance shutdown")
TIMEOUT_OPT = cli_option("--timeout", dest="timeout", type=_PositiveOrZero,
                         default=constants.DEFAULT_SHUTDOWN_TIMEOUT,
                         help="Maximum time to wait for the instance to shut down")
NO_REMEMBER_OPT = cli_option("--no-remember", dest="no_remember", default=False,
                             action="store_true",
                             help="Do not remember the state change")
IGNORE_OFFLINE_OPT = cli_option("--ignore-offline", dest="ignore_offline",
                                default=False, action="store_true",
                                help="Ignore offline nodes and do as much as possible")
TEMP_HV_OPT = cli_option("-H", "--hypervisor-parameters", dest="temp_hvparams",
                         default=None, type=ParseKeyVal, metavar="PARAMS",
                         help="Temporary hypervisor parameters")
STARTUP_PAUSED_OPT = cli_option("--paused", dest="startup_paused", default=False,
                                action="store_true", help="Pause instance at startup")
REBOOT_TYPE_OPT = cli_option("-t", "--type", dest="reboot_type",
                             default=constants.INSTANCE_REBOOT_HARD,
                             choices=sorted(constants.REBOOT_TYPES),
                             help="Type of reboot: soft/hard/full")
IGNORE_SECONDARIES_OPT = cli_option("--ignore-secondaries", dest="ignore_secondaries",
                                    default=False, action="store_true",
                                    help="Ignore errors from secondaries")
# Disk and NIC changes of a running instance: hot if the hypervisor can
# (the default), hot or an error (--hotplug), or at the next restart
HOTPLUG_OPT = cli_option("--hotplug", dest="hotplug", action="store_const",
                         const="strict", default="if-possible",
                         help="Hotplug disk and NIC changes, failing if the"
                              " hypervisor cannot")
HOTPLUG_IF_POSSIBLE_OPT = cli_option(
    "--hotplug-if-possible", dest="hotplug", action="store_const", const="if-possible",
    default="if-possible",
    help="Hotplug disk and NIC changes if the hypervisor can, else apply them at the"
         " next restart (the default)")
NO_HOTPLUG_OPT = cli_option("--no-hotplug", dest="hotplug", action="store_const",
                            const="no", default="if-possible",
                            help="Apply disk and NIC changes at the next restart only")
SHOWCMD_OPT = cli_option("--show-cmd", dest="show_command", default=False,
                         action="store_true",
                         help="Show command instead of executing it")
STATIC_OPT = cli_option("-s", "--static", dest="static", default=False,
                        action="store_true", help="Only show configuration data")
ALL_OPT = cli_option("--all", dest="show_all", default=False, action="store_true",
                     help="Show info on all instances on the cluster")
SELECT_OS_OPT = cli_option("--select-os", dest="select_os", default=False,
                           action="store_true",
                           help="Interactive OS reinstall, lists available OS templates"
                           " for selection")
OSPARAMS_PRIVATE_OPT = cli_option("--os-parameters-private", dest="osparams_private",
                                  default=None, type=ParseKeyVal, metavar="PARAMS",
                                  help="Private OS parameters")
OSPARAMS_SECRET_OPT = cli_option("--os-parameters-secret", dest="osparams_secret",
                                 default=None, type=ParseKeyVal, metavar="PARAMS",
                                 help="Secret OS parameters (used for this run only)")
RENAME_NAMECHECK_OPT = cli_option("--name-check", dest="name_check", default=True,
                                  action="store_true",
                                  help="Check that the new name resolves (the default)")
RENAME_NONAMECHECK_OPT = cli_option("--no-name-check", dest="name_check",
                                    action="store_false",
                                    help="Don't check that the new name is resolvable")
RENAME_IPCHECK_OPT = cli_option("--ip-check", dest="ip_check", default=None,
                                action="store_true",
                                help="Check that the new name's IP is not alive (the"
                                " default with the name check)")
RENAME_NOIPCHECK_OPT = cli_option("--no-ip-check", dest="ip_check", action="store_false",
                                  help="Don't check that the new name's IP is alive")

RUNTIME_MEM_OPT = cli_option("-m", "--runtime-memory", dest="runtime_mem", default=None,
                             type=_Size, metavar="<size>",
                             help="Memory to give the running instance (ballooning)")
MODIFY_HV_OPT = cli_option("-H", "--hypervisor-parameters", dest="hvparams",
                           default=None, type=ParseKeyVal, metavar="PARAMS",
                           help="Hypervisor parameters (\"default\" resets one)")
OFFLINE_INST_OPT = cli_option("--offline", dest="offline_inst", default=False,
                              action="store_true",
                              help="Mark the (stopped) instance as offline")
ONLINE_INST_OPT = cli_option("--online", dest="online_inst", default=False,
                             action="store_true",
                             help="Mark the offline instance as online (down)")

def _YesNo(text: str) -> bool:
    """"yes"/"no" (or "true"/"false") as a boolean."""
    value = text.strip().lower()
    if value in ("yes", "true", "y", "1"):
        return True
    if value in ("no", "false", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid value '{text}': expected yes or no")


ROMAN_OPT = cli_option("--roman", dest="roman_integers", default=False,
                       action="store_true",
                       help="Show some numbers (serial number, network port) in"
                       " Roman numerals")
NEW_PRIMARY_OPT = cli_option("--new-primary", dest="new_primary_node", default=None,
                             metavar="NODE", help="Set the instance's primary node")
MODIFY_COMMUNICATION_OPT = cli_option(
    "-c", "--communication", dest="instance_communication", default=None,
    type=_YesNo, metavar="yes|no",
    help="Add (yes) or remove (no) the instance communication NIC")
EXT_PARAMS_OPT = cli_option("-e", "--ext-params", dest="ext_params", default=None,
                            type=ParseKeyVal, metavar="provider=PROVIDER[,PARAM=VAL...]",
                            help="ExtStorage parameters (with -t ext)")

#: Creation from an export (gnt-backup import)
SRC_NODE_OPT = cli_option("--src-node", dest="src_node", default=None, metavar="<node>",
                          help="Node holding the export to import")
SRC_DIR_OPT = cli_option("--src-dir", dest="src_dir", default=None, metavar="<dir>",
                         help="Directory of the export to import (below the export"
                         " directory when relative)")
IMPORT_SRC_OPTS = [SRC_NODE_OPT, SRC_DIR_OPT]

#: The options of "add" beside the basic ones above
ADD_EXTRA_OPTS = [
    cli.NODEGROUP_OPT, NWSYNC_OPT, OSPARAMS_PRIVATE_OPT, OSPARAMS_SECRET_OPT,
    cli.DRY_RUN_OPT, cli.PRIORITY_OPT,
    cli_option("--tags", dest="tags", default=None, metavar="TAG[,TAG...]",
               help="Comma-separated tags of the new instance"),
    cli_option("--name-check", dest="name_check", default=True, action="store_true",
               help="Check that the instance's name resolves (the default)"),
    cli_option("--ip-check", dest="ip_check", default=True, action="store_true",
               help="Check that the instance's IP is not alive (the default)"),
    cli_option("--no-conflicts-check", dest="conflicts_check", default=True,
               action="store_false",
               help="Don't check for IP addresses used twice in a network"),
    cli_option("--forthcoming", dest="forthcoming", default=False, action="store_true",
               help="Only reserve the resources of the instance"),
    cli_option("--commit", dest="commit", default=False, action="store_true",
               help="Create an instance reserved earlier with --forthcoming"),
    cli_option("-c", "--communication", dest="instance_communication", default=False,
               type=_YesNo, metavar="yes|no",
               help="Give the instance a NIC to talk with the host (default: no)"),
]

commands: dict[str, cli.CommandDef] = {
    "add": (
        AddInstance, [ArgUnknown(min=1, max=1)],
        [DISK_TEMPLATE_OPT, NODE_PLACEMENT_OPT, OS_OPT, DISK_OPT, OS_SIZE_OPT,
         NET_OPT, NONICS_OPT, HVOPTS_OPT, HYPERVISOR_OPT, BACKEND_OPT, OSPARAMS_OPT,
         NOSTART_OPT, NOINSTALL_OPT, NONAMECHECK_OPT, NOIPCHECK_OPT,
         FILESTORE_DIR_OPT, FILESTORE_DRIVER_OPT, IALLOCATOR_OPT, FORCE_VARIANT_OPT,
         IGNORE_IPOLICY_OPT] + ADD_EXTRA_OPTS + IMPORT_SRC_OPTS + SUBMIT_OPTS,
        "-t <disk_template> -o <os> -n <node> [--disk N:size=VAL] [-s SIZE]"
        " [--net N:options] ... <name>",
        "Creates and adds a new instance to the cluster"),
    "remove": (
        RemoveInstance, [ArgInstance(min=1, max=1)],
        [FORCE_OPT, IGNORE_FAILURES_OPT, SHUTDOWN_TIMEOUT_OPT] + SUBMIT_OPTS,
        "[-f] <instance>", "Shuts down the instance and removes it"),
    "list": (
        ListInstances, [ArgInstance()],
        [NOHDR_OPT, SEP_OPT, UNITS_OPT, FIELDS_OPT, VERBOSE_OPT, FORCE_FILTER_OPT],
        "[<instance>...]",
        "Lists the instances and their status. The available fields can be shown"
        " using the \"list-fields\" command (see the man page for details). The"
        f" default field list is (in order): {utils.CommaJoin(_LIST_DEF_FIELDS)}."),
    "list-fields": (
        ListInstanceFields, [ArgUnknown()], [NOHDR_OPT, SEP_OPT],
        "[fields...]", "Lists all available fields for instances"),
    "info": (
        ShowInstanceConfig, [ArgInstance()],
        [STATIC_OPT, ALL_OPT, ROMAN_OPT, cli.PRIORITY_OPT],
        "[-s] [--roman] {--all | <instance>...}",
        "Show information on the specified instance(s)"),
    "startup": (
        StartupInstance, [ArgInstance()],
        [FORCE_OPT, BACKEND_OPT, TEMP_HV_OPT, NO_REMEMBER_OPT, STARTUP_PAUSED_OPT,
         IGNORE_OFFLINE_OPT] + selectors.MULTI_SELECT_OPTS + SUBMIT_OPTS
        + [cli.DRY_RUN_OPT, cli.PRIORITY_OPT],
        "<instance>", "Starts an instance"),
    "shutdown": (
        ShutdownInstance, [ArgInstance()],
        [FORCE_OPT, TIMEOUT_OPT, NO_REMEMBER_OPT, IGNORE_OFFLINE_OPT]
        + selectors.MULTI_SELECT_OPTS + SUBMIT_OPTS + [cli.DRY_RUN_OPT, cli.PRIORITY_OPT],
        "<instance>", "Stops an instance"),
    "reboot": (
        RebootInstance, [ArgInstance()],
        [REBOOT_TYPE_OPT, SHUTDOWN_TIMEOUT_OPT, IGNORE_SECONDARIES_OPT]
        + selectors.MULTI_SELECT_OPTS + SUBMIT_OPTS + [cli.DRY_RUN_OPT, cli.PRIORITY_OPT],
        "[-t soft|hard|full] <instance>", "Reboots an instance"),
    "console": (
        ConnectToInstanceConsole, [ArgInstance(min=1, max=1)], [SHOWCMD_OPT],
        "[--show-cmd] <instance>", "Opens a console on the specified instance"),
    "reinstall": (
        ReinstallInstance, [ArgInstance()],
        [OS_OPT, SELECT_OS_OPT, FORCE_OPT, FORCE_VARIANT_OPT, OSPARAMS_OPT,
         OSPARAMS_PRIVATE_OPT, OSPARAMS_SECRET_OPT, selectors.FORCE_MULTIPLE_OPT]
        + selectors.MULTI_NODE_OPTS + SUBMIT_OPTS + [cli.DRY_RUN_OPT, cli.PRIORITY_OPT],
        "[-f] [-o <os> | --select-os] [-O <params>] <instance>...",
        "Reinstall a stopped instance"),
    "rename": (
        RenameInstance, [ArgInstance(min=1, max=1), ArgUnknown(min=1, max=1)],
        [RENAME_NAMECHECK_OPT, RENAME_NONAMECHECK_OPT, RENAME_IPCHECK_OPT,
         RENAME_NOIPCHECK_OPT] + SUBMIT_OPTS,
        "[--no-name-check] [--no-ip-check] <instance> <new_name>",
        "Rename the instance"),
    "modify": (
        SetInstanceParams, [ArgInstance(min=1, max=1)],
        [MODIFY_HV_OPT, BACKEND_OPT, RUNTIME_MEM_OPT, NET_OPT, DISK_OPT,
         DISK_TEMPLATE_OPT, OS_OPT, FORCE_VARIANT_OPT, OSPARAMS_OPT,
         OSPARAMS_PRIVATE_OPT, OFFLINE_INST_OPT, ONLINE_INST_OPT, FORCE_OPT,
         IGNORE_IPOLICY_OPT, HOTPLUG_OPT, HOTPLUG_IF_POSSIBLE_OPT,
         NO_HOTPLUG_OPT, NODE_PLACEMENT_OPT, NWSYNC_OPT, FILESTORE_DIR_OPT,
         FILESTORE_DRIVER_OPT, NEW_PRIMARY_OPT, EXT_PARAMS_OPT, MODIFY_COMMUNICATION_OPT,
         cli.DRY_RUN_OPT,
         cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "<instance>", "Alters the parameters of an instance"),
    "batch-create": instance_batch.BATCH_CREATE_COMMAND,
}
commands.update(TagCommands(constants.TAG_INSTANCE))


# --- disks: grow-disk, activate-disks, deactivate-disks, recreate-disks ----------------------

def GrowDisk(opts: Any, args: list[str]) -> int:
    """Grow one disk of an instance by an amount (or to a size, --absolute)."""
    instance, disk, amount = args
    try:
        idx = int(disk)
    except ValueError:
        raise errors.OpPrereqError(f"Invalid disk index '{disk}': must be a number",
                                   errors.ECODE_INVAL) from None
    try:
        size = utils.ParseUnit(amount)
    except errors.UnitParseError as err:
        raise errors.OpPrereqError(f"Can't parse the given amount '{amount}': {err}",
                                   errors.ECODE_INVAL) from None
    op = opcodes.OpInstanceGrowDisk(instance_name=instance, disk=idx, amount=size,
                                    wait_for_sync=opts.wait_for_sync,
                                    absolute=opts.absolute,
                                    ignore_ipolicy=opts.ignore_ipolicy)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def ActivateDisks(opts: Any, args: list[str]) -> int:
    """Activate an instance's disks; print node:disk:device per disk."""
    op = opcodes.OpInstanceActivateDisks(instance_name=args[0],
                                         ignore_size=opts.ignore_size,
                                         wait_for_sync=opts.wait_for_sync)
    for node, disk, device in cli.SubmitOrSend(op, opts) or []:
        ToStdout("%s:%s:%s", node, disk, device)
    return constants.EXIT_SUCCESS


def DeactivateDisks(opts: Any, args: list[str]) -> int:
    """Deactivate an instance's disks."""
    op = opcodes.OpInstanceDeactivateDisks(instance_name=args[0], force=opts.force)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RecreateDisks(opts: Any, args: list[str]) -> int:
    """Recreate missing disks of an instance, optionally on another node."""
    disks: list[Any] = []
    for ident, params in opts.disks or []:
        try:
            idx = int(ident)
        except ValueError:
            raise errors.OpPrereqError(f"Invalid disk index '{ident}': must be a number",
                                       errors.ECODE_INVAL) from None
        params = dict(params)
        if constants.IDISK_SIZE in params:
            try:
                params[constants.IDISK_SIZE] = utils.ParseUnit(params[constants.IDISK_SIZE])
            except errors.UnitParseError as err:
                raise errors.OpPrereqError(f"Invalid disk size for disk {idx}: {err}",
                                           errors.ECODE_INVAL) from None
        if constants.IDISK_SPINDLES in params:
            try:
                params[constants.IDISK_SPINDLES] = int(params[constants.IDISK_SPINDLES])
            except ValueError:
                raise errors.OpPrereqError(
                    f"Invalid spindles for disk {idx}:"
                    f" '{params[constants.IDISK_SPINDLES]}'", errors.ECODE_INVAL) from None
        disks.append([idx, params])
    nodes: list[str] = []
    if opts.node:
        if opts.iallocator:
            raise errors.OpPrereqError("Only one of --iallocator and --node is allowed",
                                       errors.ECODE_INVAL)
        nodes = [name for name in opts.node.split(":") if name]
    op = opcodes.OpInstanceRecreateDisks(instance_name=args[0], disks=disks, nodes=nodes,
                                         iallocator=opts.iallocator)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- moving: failover, migrate -----------------------------------------------------------------

def FailoverInstance(opts: Any, args: list[str]) -> int:
    """Stop an instance, move it to the target node and start it there."""
    name = args[0]
    if opts.iallocator and opts.dst_node:
        raise errors.OpPrereqError("Specify either an iallocator (-I), or a target node"
                                   " (-n)", errors.ECODE_INVAL)
    if not opts.force:
        if not cli.AskUser(f"Instance {name} will be failed over to another node, which"
                           " means shutting it down. Continue?"):
            return constants.EXIT_CONFIRMATION
        if opts.ignore_consistency and not cli.AskUser(
                f"To fail instance {name} over ignoring consistency, its source node"
                " must be marked offline first. Is it?"):
            return constants.EXIT_CONFIRMATION
    op = opcodes.OpInstanceFailover(
        instance_name=name, ignore_consistency=opts.ignore_consistency,
        shutdown_timeout=opts.shutdown_timeout, iallocator=opts.iallocator,
        target_node=opts.dst_node, ignore_ipolicy=opts.ignore_ipolicy,
        cleanup=opts.cleanup)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def MigrateInstance(opts: Any, args: list[str]) -> int:
    """Move a running instance to the target node without stopping it."""
    name = args[0]
    if opts.iallocator and opts.dst_node:
        raise errors.OpPrereqError("Specify either an iallocator (-I), or a target node"
                                   " (-n)", errors.ECODE_INVAL)
    if not opts.force:
        if opts.cleanup:
            text = (f"Instance {name} will be recovered from a failed migration. Note"
                    " that the cleanup, like the migration, might impact the instance"
                    " if anything goes wrong (e.g. a hypervisor bug). Continue?")
        else:
            text = (f"Instance {name} will be migrated. Note that migration might"
                    " impact the instance if anything goes wrong (e.g. a hypervisor"
                    " bug). Continue?")
        if not cli.AskUser(text):
            return constants.EXIT_CONFIRMATION
    if not opts.live and opts.migration_mode is not None:
        raise errors.OpPrereqError("Only one of the --non-live and --migration-mode"
                                   " options can be passed", errors.ECODE_INVAL)
    mode = constants.HT_MIGRATION_NONLIVE if not opts.live else opts.migration_mode
    op = opcodes.OpInstanceMigrate(
        instance_name=name, mode=mode, cleanup=opts.cleanup, iallocator=opts.iallocator,
        target_node=opts.dst_node, allow_failover=opts.allow_failover,
        allow_runtime_changes=opts.allow_runtime_chgs,
        ignore_ipolicy=opts.ignore_ipolicy, ignore_hvversions=opts.ignore_hvversions)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def MoveInstance(opts: Any, args: list[str]) -> int:
    """Move a non-mirrored instance to another node by copying its disks."""
    name = args[0]
    if not opts.dst_node:
        raise errors.OpPrereqError("The target node must be given (-n)", errors.ECODE_INVAL)
    if not opts.force and not cli.AskUser(
            f"Instance {name} will be moved. This requires a shutdown of the"
            " instance. Continue?"):
        return constants.EXIT_CONFIRMATION
    op = opcodes.OpInstanceMove(
        instance_name=name, target_node=opts.dst_node, compress=opts.compress,
        shutdown_timeout=opts.shutdown_timeout, ignore_consistency=opts.ignore_consistency,
        ignore_ipolicy=opts.ignore_ipolicy)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


WFSYNC_OPT = cli_option("--wait-for-sync", dest="wait_for_sync", default=False,
                        action="store_true", help="Wait for disks to sync")
ABSOLUTE_OPT = cli_option("--absolute", dest="absolute", default=False,
                          action="store_true",
                          help="The amount is the disk's new size, not the increase")
IGNORE_SIZE_OPT = cli_option("--ignore-size", dest="ignore_size", default=False,
                             action="store_true",
                             help="Do not check the disks against their recorded sizes"
                             " (to repair a wrong recorded size)")
IGNORE_CONSIST_OPT = cli_option("--ignore-consistency", dest="ignore_consistency",
                                default=False, action="store_true",
                                help="Ignore the consistency of the disks on the source"
                                " node (it must be offline)")
CLEANUP_OPT = cli_option("--cleanup", dest="cleanup", default=False, action="store_true",
                         help="Recover from a failed migration instead of migrating")
ALLOW_FAILOVER_OPT = cli_option("--allow-failover", dest="allow_failover", default=False,
                                action="store_true",
                                help="Fail over instead if the instance cannot be"
                                " migrated (e.g. it is not running)")
IGNORE_HVVERSIONS_OPT = cli_option("--ignore-hvversions", dest="ignore_hvversions",
                                   default=False, action="store_true",
                                   help="Only warn about differing hypervisor versions")

commands.update({
    "grow-disk": (
        GrowDisk, [ArgInstance(min=1, max=1), ArgUnknown(min=1, max=1),
                   ArgUnknown(min=1, max=1)],
        [NWSYNC_OPT, ABSOLUTE_OPT, IGNORE_IPOLICY_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT]
        + SUBMIT_OPTS,
        "[--absolute] <instance> <disk> <size>", "Grow an instance's disk"),
    "activate-disks": (
        ActivateDisks, [ArgInstance(min=1, max=1)],
        [IGNORE_SIZE_OPT, WFSYNC_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[--ignore-size] [--wait-for-sync] <instance>", "Activate an instance's disks"),
    "deactivate-disks": (
        DeactivateDisks, [ArgInstance(min=1, max=1)],
        [FORCE_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-f] <instance>", "Deactivate an instance's disks"),
    "recreate-disks": (
        RecreateDisks, [ArgInstance(min=1, max=1)],
        [DISK_OPT, NODE_PLACEMENT_OPT, IALLOCATOR_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT]
        + SUBMIT_OPTS,
        "[-n node] [--disk N[:size=VAL][,mode=ro|rw]] <instance>",
        "Recreate an instance's disks"),
    "failover": (
        FailoverInstance, [ArgInstance(min=1, max=1)],
        [FORCE_OPT, IGNORE_CONSIST_OPT, SHUTDOWN_TIMEOUT_OPT, DST_NODE_OPT, IALLOCATOR_OPT,
         IGNORE_IPOLICY_OPT, CLEANUP_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-f] [-n node] <instance>", "Stops an instance, moves it to the target node"
        " and starts it there if it was running"),
    "migrate": (
        MigrateInstance, [ArgInstance(min=1, max=1)],
        [FORCE_OPT, NONLIVE_OPT, MIGRATION_MODE_OPT, CLEANUP_OPT, DST_NODE_OPT,
         IALLOCATOR_OPT, ALLOW_FAILOVER_OPT, NORUNTIME_CHGS_OPT, IGNORE_IPOLICY_OPT,
         IGNORE_HVVERSIONS_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-f] [-n node] <instance>", "Moves a running instance to the target node"
        " without stopping it (shared or no storage only)"),
    "move": (
        MoveInstance, [ArgInstance(min=1, max=1)],
        [FORCE_OPT, IGNORE_CONSIST_OPT, DST_NODE_OPT, COMPRESS_OPT, SHUTDOWN_TIMEOUT_OPT,
         IGNORE_IPOLICY_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-f] [-n node] [--compress=TOOL] <instance>", "Move instance to an arbitrary"
        " node (only for instances of type file and lv)"),
    "replace-disks": (
        ReplaceDisks, [ArgInstance(min=1, max=1)],
        [EARLY_RELEASE_OPT, ON_PRIMARY_OPT, ON_SECONDARY_OPT, AUTO_REPLACE_OPT,
         NEW_SECONDARY_OPT, IALLOCATOR_OPT, DISKIDX_OPT, IGNORE_IPOLICY_OPT,
         cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-s|-p|-a|-n NODE|-I NAME] [--disks idx,...] <instance>",
        "Replaces disks for the instance"),
})



def ChangeGroup(opts: Any, args: list[str]) -> int:
    """Move an instance to another node group: the allocator's jobs,
    submitted by the opcode, waited for and counted."""
    name = args[0]
    cl = cli.GetClient()
    op = opcodes.OpInstanceChangeGroup(instance_name=name, iallocator=opts.iallocator,
                                       target_groups=opts.to,
                                       early_release=opts.early_release)
    bad = RunJobList(op, opts, cl)
    if bad:
        ToStdout("There were %s errors while changing group of instance '%s'.", bad, name)
        return constants.EXIT_FAILURE
    ToStdout("Instance '%s' changed group successfully.", name)
    return constants.EXIT_SUCCESS


commands["change-group"] = (
    ChangeGroup, [ArgInstance(min=1, max=1)],
    [TO_GROUP_OPT, IALLOCATOR_OPT, EARLY_RELEASE_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT]
    + SUBMIT_OPTS,
    "[-I <iallocator>] [--to <group>] <instance>", "Change group of instance")

#: Other names of commands
aliases = {
    "start": "startup",
    "stop": "shutdown",
    "show": "info",
}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-instance."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
