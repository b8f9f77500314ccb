"""gnt-node: node administration (add, remove, list, info, modify,
restricted-command, volumes and storage units)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, errors, opcodes, qlang, utils
from ganeti.cli import (
    FIELDS_OPT,
    FORCE_FILTER_OPT,
    FORCE_OPT,
    NOHDR_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    UNITS_OPT,
    VERBOSE_OPT,
    ArgChoice,
    ArgFile,
    ArgNode,
    ArgUnknown,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.cli import tags
from ganeti.client import node_drbd, node_power, state_options
from ganeti.cli.options import (
    DST_NODE_OPT,
    EARLY_RELEASE_OPT,
    HUMAN_READABLE_OPT,
    IALLOCATOR_OPT,
    IGNORE_IPOLICY_OPT,
    IGNORE_SOFT_ERRORS_OPT,
    MIGRATION_MODE_OPT,
    NEW_SECONDARY_OPT,
    NONLIVE_OPT,
    NORUNTIME_CHGS_OPT,
    PRIMARY_ONLY_OPT,
    SECONDARY_ONLY_OPT,
)

#: Default fields of "gnt-node list" (Ganeti's)
_LIST_DEF_FIELDS = ["name", "dtotal", "dfree", "mtotal", "mnode", "mfree",
                    "pinst_cnt", "sinst_cnt"]

#: Fields "gnt-node info" reads, in this order
_INFO_FIELDS = ["name", "pip", "sip", "pinst_list", "sinst_list",
                "master_candidate", "drained", "offline", "master_capable",
                "vm_capable", "group", "group.uuid", "ndparams",
                "custom_ndparams", "powered", "noded_address", "noded_port",
                "confd_port", "master", "hv_state", "disk_state"]


def ParseYesNo(text: str) -> bool:
    """``yes``/``no`` (also true/false) as a boolean."""
    if text.lower() in ("yes", "true"):
        return True
    if text.lower() in ("no", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid value '{text}': expected yes or no")


def ParseKeyVal(text: str) -> dict[str, Any]:
    """``key=value,no_flag,-reset`` as a dict (Ganeti's parameter syntax)."""
    result: dict[str, Any] = {}
    for item in utils.UnescapeAndSplit(text, sep=",") if text else []:
        if not item:
            continue
        value: Any
        if "=" in item:
            key, value = item.split("=", 1)
        elif item.startswith("no_"):
            key, value = item[3:], False
        elif item.startswith("-"):
            key, value = item[1:], constants.VALUE_DEFAULT
        else:
            key, value = item, True
        if not key or key in result:
            raise argparse.ArgumentTypeError(f"invalid parameter '{item}'")
        result[key] = value
    return result


def _Port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"invalid port '{text}': expected 1-65535")
    return port


# --- add / remove ----------------------------------------------------------------------

def _ExistingNode(cl: Any, name: str) -> str | None:
    """The configured node ``name`` abbreviates, or None."""
    try:
        result = cl.Query(constants.QR_NODE, ["name"], qlang.MakeFilter([name], False))
    except errors.OpPrereqError as err:
        if errors.GetErrorCode(err) == errors.ECODE_NOENT:
            return None
        raise
    rows = result.get("data", []) if isinstance(result, dict) else []
    return rows[0][0][1] if rows else None


def _SshPort(info: dict[str, Any], ndparams: dict[str, Any] | None) -> int:
    port: Any = (ndparams or {}).get(constants.ND_SSH_PORT) or \
        (info.get("ndparams") or {}).get(constants.ND_SSH_PORT) or \
        constants.NDC_DEFAULTS[constants.ND_SSH_PORT]
    return int(port)


def AddNode(opts: Any, args: list[str]) -> int:
    """Prepare a node (SSH or, in a virtual cluster, locally) and add it."""
    from ganeti.bootstrap import node_setup

    cl = cli.GetClient()
    name = args[0]
    existing = _ExistingNode(cl, name)
    if opts.readd and existing is None:
        ToStderr("Node %s not in the cluster - please retry without '--readd'", name)
        return constants.EXIT_FAILURE
    if not opts.readd and existing is not None:
        ToStderr("Node %s already in the cluster (as %s) - please retry with"
                 " '--readd'", name, existing)
        return constants.EXIT_FAILURE
    if existing is not None:
        name = existing

    if opts.node_ip:
        node_ip = opts.node_ip
    else:
        try:
            host = utils.Hostname(name)
        except errors.ResolverError as err:
            raise errors.OpPrereqError(
                f"Cannot resolve node name '{name}': {err.args[-1]}; give its"
                " address with --node-ip", errors.ECODE_RESOLVER) from None
        name, node_ip = host.name, host.ip

    info = cl.QueryClusterInfo()
    ports = node_setup.NodePorts(noded=opts.noded_port, confd=opts.confd_port,
                                 ssh=_SshPort(info, opts.ndparams))
    if opts.node_setup:
        ssh_options = node_setup.SshOptions(strict_host_key=not opts.no_ssh_key_check)
        mode = node_setup.ChooseMode(name)
        ToStdout("-- WARNING --\nPerforming this operation is going to replace the"
                 " Ganeti certificates and keys on the node and restart its node"
                 " daemon.")
        output = node_setup.SetupNode(name, node_ip, ports=ports, mode=mode,
                                      ssh_options=ssh_options)
        if output:
            ToStdout("%s", output)

    op = opcodes.OpNodeAdd(node_name=name, primary_ip=node_ip,
                           secondary_ip=opts.secondary_ip, readd=opts.readd,
                           group=opts.nodegroup, master_capable=opts.master_capable,
                           vm_capable=opts.vm_capable, ndparams=opts.ndparams,
                           noded_port=opts.noded_port, confd_port=opts.confd_port,
                           node_setup=opts.node_setup,
                           hv_state=state_options.HvStateFromOpts(opts.hv_state),
                           disk_state=state_options.DiskStateFromOpts(opts.disk_state))
    cli.SubmitOrSend(op, opts, cl=cl)
    return constants.EXIT_SUCCESS


def RemoveNode(opts: Any, args: list[str]) -> int:
    """Remove a node from the cluster."""
    op = opcodes.OpNodeRemove(node_name=args[0])
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- list / list-fields / info -------------------------------------------------------------

def _FormatList(value: Any) -> str:
    return ", ".join(str(item) for item in value) if value else ""


_LIST_FORMAT = {
    "pinst_list": (_FormatList, False),
    "sinst_list": (_FormatList, False),
    "tags": (_FormatList, False),
}


#: List nodes with the selected fields
ListNodes = cli.ListCommand(constants.QR_NODE, _LIST_DEF_FIELDS, _LIST_FORMAT)
#: Describe the node fields
ListNodeFields = cli.ListFieldsCommand(constants.QR_NODE)


def NodeInfoItems(row: Sequence[Any]) -> list[tuple[str, Any]]:
    """The "info" layout of one node (a row of _INFO_FIELDS values)."""
    values = dict(zip(_INFO_FIELDS, row))
    items: list[tuple[str, Any]] = [
        ("Node name", values["name"]),
        ("primary ip", values["pip"]),
        ("secondary ip", values["sip"]),
        ("master candidate", values["master_candidate"]),
        ("drained", values["drained"]),
        ("offline", values["offline"]),
        ("master_capable", values["master_capable"]),
        ("vm_capable", values["vm_capable"]),
        *([("powered", values["powered"])] if values["powered"] is not None else []),
        ("node group", f"{values['group']} ({values['group.uuid']})"),
        ("node daemon", f"{values['noded_address']}:{values['noded_port']}"),
        ("confd port", values["confd_port"]),
    ]
    if values["master"]:
        items.insert(1, ("role", "master"))
    for key, label in (("pinst_list", "primary"), ("sinst_list", "secondary")):
        names = values[key] or []
        if names:
            items.append((f"{label} for instances", ", ".join(names)))
        else:
            items.append((f"{label} for instances", "none"))
    filled = values["ndparams"] if isinstance(values["ndparams"], dict) else {}
    custom = values["custom_ndparams"] if isinstance(values["custom_ndparams"], dict) \
        else {}
    if filled:
        items.append(("node parameters", cli.FormatParamsDictInfo(custom, filled)))
    for key, label in (("hv_state", "hypervisor state"), ("disk_state", "disk state")):
        if values.get(key):
            items.append((label, values[key]))
    return items


def ShowNodeConfig(opts: Any, args: list[str]) -> int:
    """Show the configuration of nodes (all without arguments)."""
    cl = cli.GetClient()
    result = cl.Query(constants.QR_NODE, _INFO_FIELDS, qlang.MakeFilter(args, False))
    rows = [[value for _, value in row] for row in result.get("data", [])]
    found = {row[0] for row in rows}
    missing = [name for name in args
               if not any(full == name or full.startswith(name + ".") for full in found)]
    if missing:
        raise errors.OpPrereqError(f"Node(s) not known: {', '.join(missing)}",
                                   errors.ECODE_NOENT)
    cli.PrintGenericInfo([NodeInfoItems(row) for row in rows])
    return constants.EXIT_SUCCESS


# --- modify ------------------------------------------------------------------------------------

def SetNodeParams(opts: Any, args: list[str]) -> int:
    """Change a node's roles, capabilities or parameters."""
    changes = [opts.master_candidate, opts.offline, opts.drained,
               opts.master_capable, opts.vm_capable, opts.secondary_ip,
               opts.ndparams, opts.node_powered]
    hv_state = state_options.HvStateFromOpts(opts.hv_state)
    disk_state = state_options.DiskStateFromOpts(opts.disk_state)
    changes.extend([hv_state, disk_state])
    if all(value is None for value in changes):
        ToStderr("Please give at least one of the parameters.")
        return constants.EXIT_FAILURE
    op = opcodes.OpNodeSetParams(
        node_name=args[0], master_candidate=opts.master_candidate,
        offline=opts.offline, drained=opts.drained,
        master_capable=opts.master_capable, vm_capable=opts.vm_capable,
        secondary_ip=opts.secondary_ip, ndparams=opts.ndparams,
        powered=opts.node_powered, force=opts.force, auto_promote=opts.auto_promote,
        hv_state=hv_state, disk_state=disk_state)
    result = cli.SubmitOrSend(op, opts)
    if result:
        ToStdout("Modified node %s", args[0])
        for param, value in result:
            ToStdout(" - %-5s -> %s", param, value)
    return constants.EXIT_SUCCESS


# --- migrate and evacuate: one job per instance ----------------------------------------------

def _NodeInstances(cl: Any, node: str, fields: list[str]) -> tuple[str, list[str]]:
    """The node's full name and the instances in its instance list
    ``fields`` (pinst_list, sinst_list), sorted; OpPrereqError for an
    unknown node."""
    result = cl.Query(constants.QR_NODE, ["name", *fields], qlang.MakeFilter([node], False))
    rows = result.get("data", []) if isinstance(result, dict) else []
    if not rows:
        raise errors.OpPrereqError(f"Node '{node}' not known", errors.ECODE_NOENT)
    return rows[0][0][1], utils.NiceSort({name for _, value in rows[0][1:]
                                          for name in value or []})


def RunJobList(op: Any, opts: Any, cl: Any) -> int:
    """Submit ``op`` (whose result is Ganeti's job list), wait for every
    job it submitted; return how many failed."""
    result = cli.SubmitOrSend(op, opts, cl=cl)
    jex = cli.JobExecutor(cl=cl, opts=opts)
    for submitted, job_id in result[constants.JOB_IDS_KEY]:
        jex.AddJobId(None, submitted, job_id)
    return sum(1 for ok, _ in jex.GetResults() if not ok)


def MigrateNode(opts: Any, args: list[str]) -> int:
    """Migrate every primary instance of a node (one job each)."""
    cl = cli.GetClient()
    node = args[0]
    if opts.iallocator and opts.dst_node:
        raise errors.OpPrereqError("Specify either an iallocator (-I), or a target node"
                                   " (-n)", errors.ECODE_INVAL)
    if not opts.live and opts.migration_mode is not None:
        raise errors.OpPrereqError("Only one of the --non-live and --migration-mode"
                                   " options can be passed", errors.ECODE_INVAL)
    node, instances = _NodeInstances(cl, node, ["pinst_list"])
    if not instances:
        ToStdout("No primary instances on node %s, exiting.", node)
        return constants.EXIT_SUCCESS
    if not opts.force and not cli.AskUser(
            f"Migrate instance(s) {utils.CommaJoin(instances)}?"):
        return constants.EXIT_CONFIRMATION
    mode = constants.HT_MIGRATION_NONLIVE if not opts.live else opts.migration_mode
    op = opcodes.OpNodeMigrate(
        node_name=node, mode=mode, iallocator=opts.iallocator,
        target_node=opts.dst_node, allow_runtime_changes=opts.allow_runtime_chgs,
        ignore_ipolicy=opts.ignore_ipolicy)
    bad = RunJobList(op, opts, cl)
    if bad:
        ToStderr("There were %s errors during the node migration.", bad)
        return constants.EXIT_FAILURE
    ToStdout("All %s instances migrated successfully.", len(instances))
    return constants.EXIT_SUCCESS


# --- evacuate ----------------------------------------------------------------------------

def EvacuateNode(opts: Any, args: list[str]) -> int:
    """Move the instances off a node: one job per instance (see
    :mod:`ganeti.cmdlib.node_evacuate`), waited for and counted."""
    if opts.dst_node is not None and not opts.primary_only:
        # As Ganeti: a new secondary means the secondary instances
        if not opts.secondary_only:
            ToStderr("New secondary node given (disabling iallocator), hence evacuating"
                     " secondary instances only.")
        opts.secondary_only = True
    if opts.primary_only and opts.secondary_only:
        raise errors.OpPrereqError("Only one of the --primary-only and --secondary-only"
                                   " options can be passed", errors.ECODE_INVAL)
    if opts.primary_only:
        mode, fields = constants.NODE_EVAC_PRI, ["pinst_list"]
    elif opts.secondary_only:
        mode, fields = constants.NODE_EVAC_SEC, ["sinst_list"]
    else:
        mode, fields = constants.NODE_EVAC_ALL, ["pinst_list", "sinst_list"]
    cl = cli.GetClient()
    node, instances = _NodeInstances(cl, args[0], fields)
    if not instances:
        ToStderr("No instances to evacuate on node(s) %s, exiting.", node)
        return constants.EXIT_SUCCESS
    if not opts.force and not cli.AskUser(
            f"Relocate instance(s) {utils.CommaJoin(instances)} from node(s) {node}?"):
        return constants.EXIT_CONFIRMATION
    op = opcodes.OpNodeEvacuate(node_name=node, mode=mode, remote_node=opts.dst_node,
                                iallocator=opts.iallocator,
                                early_release=opts.early_release,
                                ignore_soft_errors=opts.ignore_soft_errors)
    bad = RunJobList(op, opts, cl)
    if bad:
        ToStdout("There were %s errors during the evacuation.", bad)
        return constants.EXIT_FAILURE
    ToStdout("All instances evacuated successfully.")
    return constants.EXIT_SUCCESS


# --- restricted-command ------------------------------------------------------------------

def RestrictedCommand(opts: Any, args: list[str]) -> int:
    """Run a restricted command on the given nodes (or a node group's)."""
    cl = cli.GetClient()
    if len(args) < 2 and not opts.nodegroup:
        raise errors.OpPrereqError("Node group or node names must be given",
                                   errors.ECODE_INVAL)
    nodes = [node.name for node in
             cli.GetOnlineNodes(nodes=args[1:], cl=cl, nodegroup=opts.nodegroup)]
    if not nodes:
        ToStderr("No online nodes to run the command on")
        return constants.EXIT_FAILURE
    op = opcodes.OpRestrictedCommand(command=args[0], nodes=nodes,
                                     use_locking=opts.do_locking)
    result = cli.SubmitOrSend(op, opts, cl=cl)
    exit_code = constants.EXIT_SUCCESS
    for node, (status, text) in zip(nodes, result):
        ToStdout("------------------------------------------------")
        if status:
            if opts.show_machine_names:
                for line in text.splitlines():
                    ToStdout("%s: %s", node, line)
            else:
                ToStdout("Node: %s", node)
                ToStdout("%s", text)
        else:
            exit_code = constants.EXIT_FAILURE
            ToStdout("%s", text)
    return exit_code


# --- volumes / list-storage / modify-storage / repair-storage ------------------------------

#: Default fields of "gnt-node volumes" and their titles (Ganeti's)
_LIST_VOL_DEF_FIELDS = ["node", "phys", "vg", "name", "size", "instance"]
_LIST_VOL_HEADERS = {"node": "Node", "phys": "PhysDev", "vg": "VG", "name": "Name",
                     "size": "Size", "instance": "Instance"}

#: Default fields of "gnt-node list-storage" and their titles (Ganeti's)
_LIST_STOR_DEF_FIELDS = [constants.SF_NODE, constants.SF_TYPE, constants.SF_NAME,
                         constants.SF_SIZE, constants.SF_USED, constants.SF_FREE,
                         constants.SF_ALLOCATABLE]
_LIST_STOR_HEADERS = {
    constants.SF_NODE: "Node", constants.SF_TYPE: "Type", constants.SF_NAME: "Name",
    constants.SF_SIZE: "Size", constants.SF_USED: "Used", constants.SF_FREE: "Free",
    constants.SF_ALLOCATABLE: "Allocatable",
}
_STOR_SIZE_FIELDS = [constants.SF_SIZE, constants.SF_USED, constants.SF_FREE]

#: Storage types users may name (the man page's list)
_USER_STORAGE_TYPES = (constants.ST_LVM_PV, constants.ST_LVM_VG, constants.ST_FILE,
                       constants.ST_SHARED_FILE, constants.ST_GLUSTER)


def ConvertStorageType(user_storage_type: str) -> str:
    """A storage type named by the user, checked (OpPrereqError otherwise)."""
    if user_storage_type not in _USER_STORAGE_TYPES:
        raise errors.OpPrereqError(
            f"Unknown storage type: {user_storage_type} (valid:"
            f" {', '.join(_USER_STORAGE_TYPES)})", errors.ECODE_INVAL)
    return user_storage_type


def _PrintTable(opts: Any, headers: dict[str, str], fields: list[str],
                rows: list[list[Any]], sized: list[str]) -> None:
    for line in cli.GenerateTable(None if opts.no_headers else headers, fields,
                                  opts.separator, rows, numfields=sized,
                                  unitfields=sized, units=opts.units):
        ToStdout("%s", line)


def ListVolumes(opts: Any, args: list[str]) -> int:
    """List the logical volumes of nodes (all without arguments)."""
    fields = cli.ParseFields(opts.output, _LIST_VOL_DEF_FIELDS)
    op = opcodes.OpNodeQueryvols(nodes=args, output_fields=fields)
    rows = cli.SubmitOpCode(op, opts=opts)
    _PrintTable(opts, _LIST_VOL_HEADERS, fields, rows, ["size"])
    return constants.EXIT_SUCCESS


def ListStorage(opts: Any, args: list[str]) -> int:
    """List the storage units of nodes (all without arguments)."""
    storage_type = ConvertStorageType(opts.user_storage_type) \
        if opts.user_storage_type else None
    fields = cli.ParseFields(opts.output, _LIST_STOR_DEF_FIELDS)
    op = opcodes.OpNodeQueryStorage(nodes=args, storage_type=storage_type,
                                    output_fields=fields)
    rows = []
    for row in cli.SubmitOpCode(op, opts=opts):
        rows.append([("Y" if value else "N") if field == constants.SF_ALLOCATABLE
                     else value for field, value in zip(fields, row)])
    _PrintTable(opts, _LIST_STOR_HEADERS, fields, rows, _STOR_SIZE_FIELDS)
    return constants.EXIT_SUCCESS


def ModifyStorage(opts: Any, args: list[str]) -> int:
    """Change a storage unit of a node (an LVM PV's allocatable flag)."""
    node_name, user_storage_type, volume_name = args
    storage_type = ConvertStorageType(user_storage_type)
    changes = {}
    if opts.allocatable is not None:
        changes[constants.SF_ALLOCATABLE] = opts.allocatable
    if not changes:
        ToStderr("No changes to perform, exiting.")
        return constants.EXIT_SUCCESS
    op = opcodes.OpNodeModifyStorage(node_name=node_name, storage_type=storage_type,
                                     name=volume_name, changes=changes)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RepairStorage(opts: Any, args: list[str]) -> int:
    """Repair a storage unit of a node (vgreduce --removemissing of a VG)."""
    node_name, user_storage_type, volume_name = args
    storage_type = ConvertStorageType(user_storage_type)
    op = opcodes.OpRepairNodeStorage(node_name=node_name, storage_type=storage_type,
                                     name=volume_name,
                                     ignore_consistency=opts.ignore_consistency)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- The command table ----------------------------------------------------------------

_YESNO = {"type": ParseYesNo, "metavar": "yes|no", "default": None}

READD_OPT = cli_option("--readd", dest="readd", default=False, action="store_true",
                       help="Readd old node after replacing it")
SECONDARY_IP_OPT = cli_option("-s", "--secondary-ip", dest="secondary_ip",
                              default=None, metavar="ADDRESS",
                              help="Specify the secondary ip for the node")
NODEGROUP_OPT = cli.NODEGROUP_OPT
SYNC_OPT = cli_option("--sync", dest="do_locking", default=False, action="store_true",
                      help="Lock the nodes exclusively (wait for other jobs on them)")
MC_OPT = cli_option("-C", "--master-candidate", dest="master_candidate",
                    help="Set the master_candidate flag on the node", **_YESNO)
OFFLINE_OPT = cli_option("-O", "--offline", dest="offline",
                         help="Set the offline flag on the node", **_YESNO)
DRAINED_OPT = cli_option("-D", "--drained", dest="drained",
                         help="Set the drained flag on the node", **_YESNO)
CAPAB_MASTER_OPT = cli_option("--master-capable", dest="master_capable",
                              help="Set the master_capable flag on the node",
                              **_YESNO)
CAPAB_VM_OPT = cli_option("--vm-capable", dest="vm_capable",
                          help="Set the vm_capable flag on the node", **_YESNO)
NODE_POWERED_OPT = cli_option("--node-powered", dest="node_powered",
                              help="Specify if the SoR for node is powered",
                              **_YESNO)
AUTO_PROMOTE_OPT = cli_option("--auto-promote", dest="auto_promote", default=False,
                              action="store_true",
                              help="Automatically promote master candidates as"
                              " needed (lock all nodes)")
NODE_PARAMS_OPT = cli_option("--node-parameters", dest="ndparams", default=None,
                             type=ParseKeyVal, metavar="PARAMS",
                             help="Node parameters (key=value,...)")
NODE_IP_OPT = cli_option("--node-ip", dest="node_ip", default=None, metavar="ADDRESS",
                         help="The node's primary IP address (default: resolved"
                         " from its name)")
NODED_PORT_OPT = cli_option("--noded-port", dest="noded_port", default=None,
                            type=_Port, metavar="PORT",
                            help="Port of the node's node daemon (default: the"
                            " cluster's)")
CONFD_PORT_OPT = cli_option("--confd-port", dest="confd_port", default=None,
                            type=_Port, metavar="PORT",
                            help="Port of the node's confd (default: the cluster's)")
NONODE_SETUP_OPT = cli_option(
    "--no-node-setup", dest="node_setup", default=True, action="store_false",
    help="Skip the node setup (copying the cluster's certificates and keys,"
    " starting the node daemon): it was done by hand; the node daemon must"
    " answer")
NOSSH_KEYCHECK_OPT = cli_option("--no-ssh-key-check", dest="no_ssh_key_check",
                                default=False, action="store_true",
                                help="Disable SSH key fingerprint checking")
STORAGE_TYPE_OPT = cli_option("-t", "--storage-type", dest="user_storage_type",
                              choices=list(_USER_STORAGE_TYPES), default=None,
                              metavar="STORAGE_TYPE",
                              help="Storage type (default: that of the cluster's"
                              " first enabled disk template; one of"
                              f" {', '.join(_USER_STORAGE_TYPES)})")
ALLOCATABLE_OPT = cli_option("--allocatable", dest="allocatable",
                             help="Set the allocatable flag on a volume", **_YESNO)
IGNORE_CONSIST_OPT = cli_option("--ignore-consistency", dest="ignore_consistency",
                                action="store_true", default=False,
                                help="Ignore the consistency of the disks on the"
                                " secondary")

commands: dict[str, cli.CommandDef] = {
    "add": (
        AddNode, [ArgNode(min=1, max=1)],
        [READD_OPT, SECONDARY_IP_OPT, NODEGROUP_OPT, CAPAB_MASTER_OPT, CAPAB_VM_OPT,
         NODE_PARAMS_OPT, NODE_IP_OPT, NODED_PORT_OPT, CONFD_PORT_OPT,
         NOSSH_KEYCHECK_OPT, state_options.HV_STATE_OPT, state_options.DISK_STATE_OPT,
         NONODE_SETUP_OPT] + SUBMIT_OPTS,
        "[-s ip] [--readd] [-g group] [--master-capable yes|no]"
        " [--vm-capable yes|no] [--node-parameters ndparams] [--node-ip ADDRESS]"
        " [--noded-port PORT] [--confd-port PORT] [--no-ssh-key-check]"
        " [--disk-state diskstate] [--hypervisor-state hvstate] [--no-node-setup]"
        " <node_name>",
        "Add a node to the cluster"),
    "remove": (
        RemoveNode, [ArgNode(min=1, max=1)], list(SUBMIT_OPTS),
        "<node_name>", "Removes a node from the cluster"),
    "list": (
        ListNodes, [ArgNode()],
        [NOHDR_OPT, SEP_OPT, UNITS_OPT, FIELDS_OPT, VERBOSE_OPT, FORCE_FILTER_OPT],
        "[nodes...]",
        "Lists the nodes in the cluster. The available fields can be shown"
        " using the \"list-fields\" command (see the man page for details)."
        f" The default field list is (in order): {utils.CommaJoin(_LIST_DEF_FIELDS)}."),
    "list-fields": (
        ListNodeFields, [ArgUnknown()], [NOHDR_OPT, SEP_OPT],
        "[fields...]", "Lists all available fields for nodes"),
    "info": (
        ShowNodeConfig, [ArgNode()], [],
        "[<node_name>...]", "Show information about the node(s)"),
    "modify": (
        SetNodeParams, [ArgNode(min=1, max=1)],
        [FORCE_OPT, MC_OPT, DRAINED_OPT, OFFLINE_OPT, CAPAB_MASTER_OPT,
         CAPAB_VM_OPT, SECONDARY_IP_OPT, AUTO_PROMOTE_OPT, NODE_PARAMS_OPT,
         NODE_POWERED_OPT, state_options.HV_STATE_OPT,
         state_options.DISK_STATE_OPT] + SUBMIT_OPTS,
        "<node_name>", "Alters the parameters of a node"),
    "migrate": (
        MigrateNode, [ArgNode(min=1, max=1)],
        [FORCE_OPT, NONLIVE_OPT, MIGRATION_MODE_OPT, DST_NODE_OPT, IALLOCATOR_OPT,
         NORUNTIME_CHGS_OPT, IGNORE_IPOLICY_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "[-f] [--non-live] [--migration-mode=live|non-live] [--ignore-ipolicy]"
        " [{-I iallocator | -n node}] <node>",
        "Migrate all the primary instance on a node away from it"),
    "evacuate": (
        EvacuateNode, [ArgNode(min=1, max=1)],
        [FORCE_OPT, IALLOCATOR_OPT, NEW_SECONDARY_OPT, EARLY_RELEASE_OPT,
         PRIMARY_ONLY_OPT, SECONDARY_ONLY_OPT, IGNORE_SOFT_ERRORS_OPT, cli.PRIORITY_OPT]
        + SUBMIT_OPTS,
        "[-f] {-I <iallocator> | -n <dst>} [-p | -s] [options...] <node>",
        "Relocate the primary and/or secondary instances from a node"),
    "restricted-command": (
        RestrictedCommand, [ArgUnknown(min=1, max=1), ArgNode()],
        [SYNC_OPT, cli.PRIORITY_OPT, *SUBMIT_OPTS, cli.SHOW_MACHINE_OPT, NODEGROUP_OPT],
        "[-M] [--sync] { -g <group> <command> | <command> <node>... }",
        "Executes a restricted command on node(s)"),
    "volumes": (
        ListVolumes, [ArgNode()],
        [NOHDR_OPT, SEP_OPT, UNITS_OPT, HUMAN_READABLE_OPT, FIELDS_OPT,
         cli.PRIORITY_OPT],
        "[<node_name>...]", "List logical volumes on node(s)"),
    "list-storage": (
        ListStorage, [ArgNode()],
        [NOHDR_OPT, SEP_OPT, UNITS_OPT, HUMAN_READABLE_OPT, FIELDS_OPT,
         STORAGE_TYPE_OPT, cli.PRIORITY_OPT],
        "[<node_name>...]",
        "List storage units on node(s). The available fields are (see the man"
        f" page for details): {utils.CommaJoin(_LIST_STOR_DEF_FIELDS)}."),
    "modify-storage": (
        ModifyStorage,
        [ArgNode(min=1, max=1), ArgChoice(min=1, max=1, choices=_USER_STORAGE_TYPES),
         ArgFile(min=1, max=1)],
        [ALLOCATABLE_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "<node_name> <storage_type> <name>", "Modify storage volume on a node"),
    "repair-storage": (
        RepairStorage,
        [ArgNode(min=1, max=1), ArgChoice(min=1, max=1, choices=_USER_STORAGE_TYPES),
         ArgFile(min=1, max=1)],
        [IGNORE_CONSIST_OPT, cli.DRY_RUN_OPT, cli.PRIORITY_OPT] + SUBMIT_OPTS,
        "<node_name> <storage_type> <name>", "Repairs a storage volume on a node"),
}
commands["list-drbd"] = node_drbd.COMMAND
commands.update(node_power.NODE_COMMANDS)
commands.update(tags.TagCommands(constants.TAG_NODE))

#: Other names of commands
aliases = {
    "show": "info",
}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-node."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
