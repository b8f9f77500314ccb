"""gnt-backup: exports of instances (export, import, list, list-fields, remove).

``export`` runs OpBackupExport (local mode), ``import`` OpInstanceCreate
in import mode (the options of ``gnt-instance add`` plus ``--src-node``
and ``--src-dir``), ``list`` a query of the "export" resource (a table of node and
export names, as Ganeti 3.0's), ``remove`` OpBackupRemove. See gnt-backup(8).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes
from ganeti.cli import (
    ARGS_NONE,
    FIELDS_OPT,
    NOHDR_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    ArgInstance,
    ArgUnknown,
    ToStderr,
    cli_option,
)
from ganeti.cli.options import COMPRESS_OPT, IALLOCATOR_OPT, IGNORE_IPOLICY_OPT
from ganeti.client import gnt_instance as gi

#: The default fields of "gnt-backup list"
_LIST_DEF_FIELDS = ["node", "export"]


def ListExports(opts: Any, args: list[str]) -> int:
    """List the exports of the nodes (all, or those of --node): a query of
    the "export" resource, as Ganeti 3.0's. A node that cannot be asked
    shows as such in the table (and its error is in the master's log)."""
    fields = cli.ParseFields(opts.output, _LIST_DEF_FIELDS)
    return cli.GenericList(constants.QR_EXPORT, fields, opts.nodes or None, opts.units,
                           opts.separator, not opts.no_headers, verbose=opts.verbose,
                           namefield="node")


def ListExportFields(opts: Any, args: list[str]) -> int:
    """List the fields of "gnt-backup list"."""
    return cli.GenericListFields(constants.QR_EXPORT, args, opts.separator,
                                 not opts.no_headers)


def ExportInstance(opts: Any, args: list[str]) -> int:
    """Export an instance to a node."""
    if not opts.node:
        raise errors.OpPrereqError("Target node must be specified (-n)",
                                   errors.ECODE_INVAL)
    op = opcodes.OpBackupExport(
        instance_name=args[0], target_node=opts.node, compress=opts.transport_compression,
        shutdown=opts.shutdown, shutdown_timeout=opts.shutdown_timeout,
        remove_instance=opts.remove_instance,
        ignore_remove_failures=opts.ignore_remove_failures,
        mode=constants.EXPORT_MODE_LOCAL, zero_free_space=opts.zero_free_space,
        zeroing_timeout_fixed=opts.zeroing_timeout_fixed,
        zeroing_timeout_per_mib=opts.zeroing_timeout_per_mib,
        long_sleep=opts.long_sleep)
    result = cli.SubmitOrSend(op, opts)
    if not result:
        return constants.EXIT_SUCCESS
    finalized, disk_results = result
    if not finalized or not all(disk_results):
        bad = [str(idx) for idx, ok in enumerate(disk_results) if not ok]
        ToStderr("Export failed" + (f", errors in disk(s) {', '.join(bad)}" if bad else ""))
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS


def ImportOpcode(opts: Any, args: list[str]) -> opcodes.OpInstanceCreate:
    """OpInstanceCreate in import mode from the options of gnt-instance add
    plus --src-node and --src-dir: what is not given comes from the export."""
    hvname, hvparams = gi.HvParams(opts)
    pnode, snode = (opts.node.split(":", 1) + [None])[:2] if opts.node else (None, None)
    src_dir = getattr(opts, "src_dir", None)
    if src_dir and not os.path.isabs(src_dir):
        src_dir = os.path.join(constants.DEFAULT_EXPORT_DIR, src_dir)
    if src_dir:
        src_dir = os.path.normpath(src_dir)
    # No --net: the export's NICs (gnt-instance add would make a default one)
    nics = gi.BuildNics(opts) if opts.nics else []
    return opcodes.OpInstanceCreate(
        instance_name=args[0], mode=constants.INSTANCE_IMPORT,
        src_node=getattr(opts, "src_node", None), src_path=src_dir,
        disk_template=opts.disk_template, disks=gi.BuildDisks(opts), nics=nics,
        pnode=pnode, snode=snode or None, iallocator=opts.iallocator,
        os_type=getattr(opts, "os", None), osparams=getattr(opts, "osparams", None) or {},
        beparams=gi.BeParams(opts), hypervisor=hvname, hvparams=hvparams,
        start=opts.start, no_install=getattr(opts, "no_install", False),
        name_check=opts.name_check, ip_check=opts.ip_check,
        file_storage_dir=opts.file_storage_dir, file_driver=opts.file_driver,
        force_variant=getattr(opts, "force_variant", False),
        ignore_ipolicy=opts.ignore_ipolicy,
        identify_defaults=getattr(opts, "identify_defaults", False),
        compress=getattr(opts, "compress", None) or constants.IEC_NONE,
        tags=[tag for tag in (getattr(opts, "tags", None) or "").split(",") if tag],
        # Options of gnt-instance add that gnt-backup import has not
        group_name=getattr(opts, "nodegroup", None),
        wait_for_sync=getattr(opts, "wait_for_sync", True),
        conflicts_check=getattr(opts, "conflicts_check", True),
        osparams_private=getattr(opts, "osparams_private", None) or {},
        osparams_secret=getattr(opts, "osparams_secret", None) or {})


def ImportInstance(opts: Any, args: list[str]) -> int:
    """Create an instance from an export."""
    cli.SubmitOrSend(ImportOpcode(opts, args), opts)
    return constants.EXIT_SUCCESS


def RemoveExport(opts: Any, args: list[str]) -> int:
    """Remove the exports of an instance."""
    cli.SubmitOrSend(opcodes.OpBackupRemove(instance_name=args[0]), opts)
    return constants.EXIT_SUCCESS


NODE_OPT = cli_option("-n", "--node", dest="node", default=None, metavar="<node>",
                      help="Target node")
NODE_LIST_OPT = cli_option("--node", dest="nodes", action="append", default=[],
                           metavar="<node>", help="Only this node (may be repeated)")
NOSHUTDOWN_OPT = cli_option("--noshutdown", dest="shutdown", default=True,
                            action="store_false",
                            help="Don't shut down the instance (snapshots only)")
REMOVE_INSTANCE_OPT = cli_option("--remove-instance", dest="remove_instance",
                                 default=False, action="store_true",
                                 help="Remove the instance from the cluster")
IGNORE_REMOVE_FAILURES_OPT = cli_option(
    "--ignore-remove-failures", dest="ignore_remove_failures", default=False,
    action="store_true", help="Remove the instance even if its disks cannot be removed")
TRANSPORT_COMPRESSION_OPT = cli_option(
    "--transport-compression", "--compress", dest="transport_compression",
    default=constants.IEC_NONE, metavar="<TOOL>",
    help="Compression tool for the data transfer: 'none' (the default) or one of the"
    " cluster's compression tools")
ZERO_FREE_SPACE_OPT = cli_option("--zero-free-space", dest="zero_free_space",
                                 default=False, action="store_true",
                                 help="Zero the free space of the disks first, booting the"
                                 " cluster's zeroing image in a helper VM")
ZEROING_TIMEOUT_FIXED_OPT = cli_option("--zeroing-timeout-fixed",
                                       dest="zeroing_timeout_fixed", default=None,
                                       type=int, metavar="<seconds>",
                                       help="Seconds the zeroing helper VM gets at"
                                       " least (default 300)")
ZEROING_TIMEOUT_PER_MIB_OPT = cli_option("--zeroing-timeout-per-mib",
                                         dest="zeroing_timeout_per_mib", default=None,
                                         type=float, metavar="<seconds>",
                                         help="Seconds the zeroing helper VM gets per"
                                         " MiB of the instance's disks (default 0.05)")
LONG_SLEEP_OPT = cli_option("--long-sleep", dest="long_sleep", default=False,
                            action="store_true",
                            help="Allow the instance to stay down for the whole export")
IDENTIFY_DEFAULTS_OPT = cli_option("--identify-defaults", dest="identify_defaults",
                                   default=False, action="store_true",
                                   help="Parameters equal to the cluster's defaults"
                                   " follow the defaults")

#: The options of gnt-instance add that import takes too
IMPORT_OPTS = [gi.DISK_TEMPLATE_OPT, gi.NODE_PLACEMENT_OPT, gi.OS_OPT, gi.DISK_OPT,
               gi.OS_SIZE_OPT, gi.NET_OPT, gi.NONICS_OPT, gi.HVOPTS_OPT,
               gi.HYPERVISOR_OPT, gi.BACKEND_OPT, gi.OSPARAMS_OPT, gi.NOSTART_OPT,
               gi.NONAMECHECK_OPT, gi.NOIPCHECK_OPT, gi.FILESTORE_DIR_OPT,
               gi.FILESTORE_DRIVER_OPT, IALLOCATOR_OPT, gi.FORCE_VARIANT_OPT,
               IGNORE_IPOLICY_OPT, COMPRESS_OPT, gi.SRC_NODE_OPT, gi.SRC_DIR_OPT,
               IDENTIFY_DEFAULTS_OPT]

commands: dict[str, cli.CommandDef] = {
    "list": (
        ListExports, ARGS_NONE, [NODE_LIST_OPT, NOHDR_OPT, SEP_OPT, FIELDS_OPT,
                                  cli.UNITS_OPT, cli.VERBOSE_OPT],
        "", "Lists instance exports available in the ganeti cluster"),
    "list-fields": (
        ListExportFields, [ArgUnknown()], [NOHDR_OPT, SEP_OPT], "[fields...]",
        "Lists all available fields for exports"),
    "export": (
        ExportInstance, [ArgInstance(min=1, max=1)],
        [NODE_OPT, NOSHUTDOWN_OPT, gi.SHUTDOWN_TIMEOUT_OPT, REMOVE_INSTANCE_OPT,
         IGNORE_REMOVE_FAILURES_OPT, TRANSPORT_COMPRESSION_OPT, ZERO_FREE_SPACE_OPT,
         ZEROING_TIMEOUT_FIXED_OPT, ZEROING_TIMEOUT_PER_MIB_OPT, LONG_SLEEP_OPT]
        + SUBMIT_OPTS,
        "-n <target_node> [opts...] <name>", "Exports an instance to an image"),
    "import": (
        ImportInstance, [ArgUnknown(min=1, max=1)], IMPORT_OPTS + SUBMIT_OPTS,
        "[...] -t disk-type -n node[:secondary-node] <name>",
        "Imports an instance from an exported image"),
    "remove": (
        RemoveExport, [ArgUnknown(min=1, max=1)], SUBMIT_OPTS, "<name>",
        "Remove exports of named instance from the filesystem."),
}


def Main(argv: Sequence[str] | None = None) -> int:
    """The gnt-backup entry point."""
    return cli.GenericMain(commands, argv=argv)
