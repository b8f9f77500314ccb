"""gnt-network: network administration (add, remove, modify, rename,
connect, disconnect, list, list-fields, info, tags).

``connect`` and ``disconnect`` without group names act on every node
group, one job per group, as Ganeti 3.0 does; the NIC mode, link and VLAN
of a connection come from ``-N mode=...,link=...,vlan=...`` (Ganeti's
NIC defaults fill what is not given).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from ganeti import cli, constants, errors, objects, opcodes, qlang, utils
from ganeti.cli import (
    FIELDS_OPT,
    FORCE_FILTER_OPT,
    FORCE_OPT,
    NOHDR_OPT,
    SEP_OPT,
    SUBMIT_OPTS,
    UNITS_OPT,
    VERBOSE_OPT,
    ArgGroup,
    ArgUnknown,
    ToStderr,
    ToStdout,
    cli_option,
)
from ganeti.cli import tags
from ganeti.client.gnt_node import ParseKeyVal

#: Default fields of "gnt-network list" (Ganeti's)
_LIST_DEF_FIELDS = ["name", "network", "gateway", "mac_prefix", "group_list", "tags"]

#: Fields "gnt-network info" reads, in this order
_INFO_FIELDS = ["name", "network", "gateway", "network6", "gateway6", "mac_prefix",
                "free_count", "reserved_count", "map", "group_list", "inst_list",
                "external_reservations", "serial_no", "uuid"]

#: Addresses per line of the usage map in "info"
_MAP_WIDTH = 64


def _SplitIps(text: str | None) -> list[str] | None:
    """A comma-separated list of addresses (None stays None)."""
    if text is None:
        return None
    return [item.strip() for item in utils.UnescapeAndSplit(text, sep=",")
            if item.strip()]


# --- add / remove / modify / rename ------------------------------------------------------

def AddNetwork(opts: Any, args: list[str]) -> int:
    """Create a network."""
    if opts.network is None:
        raise errors.OpPrereqError("The --network option must be given",
                                   errors.ECODE_INVAL)
    net_tags = [tag for tag in (opts.tags or "").split(",") if tag]
    op = opcodes.OpNetworkAdd(
        network_name=args[0], network=opts.network, gateway=opts.gateway,
        network6=opts.network6, gateway6=opts.gateway6, mac_prefix=opts.mac_prefix,
        add_reserved_ips=_SplitIps(opts.add_reserved_ips),
        conflicts_check=opts.conflicts_check, tags=net_tags)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RemoveNetwork(opts: Any, args: list[str]) -> int:
    """Remove a network no group is connected to."""
    op = opcodes.OpNetworkRemove(network_name=args[0], force=opts.force)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def SetNetworkParams(opts: Any, args: list[str]) -> int:
    """Change a network's parameters and reservations."""
    changes = {
        "gateway": opts.gateway,
        "add_reserved_ips": _SplitIps(opts.add_reserved_ips),
        "remove_reserved_ips": _SplitIps(opts.remove_reserved_ips),
        "mac_prefix": opts.mac_prefix,
        "gateway6": opts.gateway6,
        "network6": opts.network6,
    }
    if all(value is None for value in changes.values()):
        ToStderr("Please give at least one of the parameters.")
        return constants.EXIT_FAILURE
    op = opcodes.OpNetworkSetParams(network_name=args[0], **changes)
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


def RenameNetwork(opts: Any, args: list[str]) -> int:
    """Rename a network."""
    op = opcodes.OpNetworkRename(network_name=args[0], new_name=args[1])
    cli.SubmitOrSend(op, opts)
    return constants.EXIT_SUCCESS


# --- connect / disconnect ------------------------------------------------------------------

def _GroupNames(cl: Any, names: Sequence[str]) -> list[str]:
    """The named groups, or every group when none is named."""
    if names:
        return list(names)
    result = cl.Query(constants.QR_GROUP, ["name"], None)
    return [row[0][1] for row in result.get("data", [])]


def ConnectNetwork(opts: Any, args: list[str]) -> int:
    """Connect a network to node groups (all of them without names)."""
    if len(args) > 1 and args[1] in constants.NIC_VALID_MODES:
        raise errors.OpPrereqError(
            "Passing the mode and link as arguments is not supported any more;"
            " use -N mode=MODE,link=LINK[,vlan=VLAN]", errors.ECODE_INVAL)
    nicparams = dict(opts.nicparams or {})
    unknown = sorted(set(nicparams) - set(constants.NICC_DEFAULTS))
    if unknown:
        raise errors.OpPrereqError(
            f"Unknown NIC parameter(s): {', '.join(unknown)} (known:"
            f" {', '.join(sorted(constants.NICC_DEFAULTS))})", errors.ECODE_INVAL)
    params = objects.FillDict(constants.NICC_DEFAULTS, nicparams)
    cl = cli.GetClient()
    for group in _GroupNames(cl, args[1:]):
        op = opcodes.OpNetworkConnect(
            group_name=group, network_name=args[0],
            network_mode=params[constants.NIC_MODE],
            network_link=params[constants.NIC_LINK],
            network_vlan=str(params[constants.NIC_VLAN] or ""),
            conflicts_check=opts.conflicts_check)
        cli.SubmitOpCode(op, cl=cl, opts=opts)
    return constants.EXIT_SUCCESS


def DisconnectNetwork(opts: Any, args: list[str]) -> int:
    """Disconnect a network from node groups (all of them without names)."""
    cl = cli.GetClient()
    for group in _GroupNames(cl, args[1:]):
        op = opcodes.OpNetworkDisconnect(group_name=group, network_name=args[0])
        cli.SubmitOpCode(op, cl=cl, opts=opts)
    return constants.EXIT_SUCCESS


# --- list / list-fields / info ---------------------------------------------------------------

def FormatGroupList(value: Any) -> str:
    """``group (mode, link, vlan), ...`` of a group_list value."""
    if not isinstance(value, list):
        return str(value)
    return ", ".join(f"{entry[0]} ({', '.join(str(item) for item in entry[1:])})"
                     for entry in value)


def _FormatList(value: Any) -> str:
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)


_LIST_FORMAT = {
    "group_list": (FormatGroupList, False),
    "inst_list": (_FormatList, False),
    "tags": (_FormatList, False),
}

#: List networks with the selected fields
ListNetworks = cli.ListCommand(constants.QR_NETWORK, _LIST_DEF_FIELDS, _LIST_FORMAT)
#: Describe the network fields
ListNetworkFields = cli.ListFieldsCommand(constants.QR_NETWORK)


def NetworkInfoLines(values: dict[str, Any],
                     nic_ips: dict[str, list[tuple[int, Any]]]) -> list[str]:
    """The "info" lines of one network (``values``: _INFO_FIELDS by name;
    ``nic_ips``: instance name -> [(NIC index, IP)] of its NICs on it)."""
    def _Opt(key: str) -> str:
        value = values.get(key)
        return "None" if value is None else str(value)

    free = values.get("free_count") or 0
    size = free + (values.get("reserved_count") or 0)
    lines = [
        f"Network name: {values['name']}",
        f"UUID: {values['uuid']}",
        f"Serial number: {values['serial_no']}",
        f"  Subnet: {values['network']}",
        f"  Gateway: {_Opt('gateway')}",
        f"  IPv6 Subnet: {_Opt('network6')}",
        f"  IPv6 Gateway: {_Opt('gateway6')}",
        f"  Mac Prefix: {_Opt('mac_prefix')}",
        f"  Size: {size}",
        f"  Free: {free} ({100.0 * free / size if size else 0.0:.2f}%)",
        "  Usage map:",
    ]
    mapping = values.get("map") or ""
    for start in range(0, len(mapping), _MAP_WIDTH):
        line = mapping[start:start + _MAP_WIDTH]
        lines.append(f"     {str(start).rjust(4)} {line.ljust(_MAP_WIDTH)}"
                     f" {start + _MAP_WIDTH - 1}")
    lines.append("         (X) used    (.) free")
    ext = values.get("external_reservations")
    if ext:
        lines.append("  externally reserved IPs:")
        lines.extend(f"    {line}" for line in textwrap.wrap(ext, width=_MAP_WIDTH))
    groups = values.get("group_list") or []
    if groups:
        lines.append("  connected to node groups:")
        for entry in groups:
            name, mode, link, vlan = (list(entry) + ["", "", "", ""])[:4]
            lines.append(f"    {name} (mode:{mode} link:{link} vlan:{vlan})")
    else:
        lines.append("  not connected to any node group")
    instances = values.get("inst_list") or []
    if instances:
        lines.append(f"  used by {len(instances)} instances:")
        for inst in instances:
            nics = ", ".join(f"{idx}:{ip}" for idx, ip in nic_ips.get(inst, []))
            lines.append(f"    {inst}: {nics}")
    else:
        lines.append("  not used by any instances")
    return lines


def _InstanceNics(cl: Any, instances: list[str], net_uuid: str
                  ) -> dict[str, list[tuple[int, Any]]]:
    """(NIC index, IP) of each instance's NICs on the network."""
    if not instances:
        return {}
    result = cl.Query(constants.QR_INSTANCE, ["name", "nic.ips", "nic.networks"],
                      qlang.MakeFilter(instances, False))
    found: dict[str, list[tuple[int, Any]]] = {}
    for row in result.get("data", []):
        name, ips, nets = (value for _, value in row)
        if not isinstance(ips, list) or not isinstance(nets, list):
            continue
        found[name] = [(idx, ip) for idx, (ip, net) in enumerate(zip(ips, nets))
                       if net == net_uuid]
    return found


def ShowNetworkConfig(opts: Any, args: list[str]) -> int:
    """Show the configuration and usage of networks (all without names)."""
    cl = cli.GetClient()
    result = cl.Query(constants.QR_NETWORK, _INFO_FIELDS, qlang.MakeFilter(args, False))
    rows = [dict(zip(_INFO_FIELDS, (value for _, value in row)))
            for row in result.get("data", [])]
    found = {row["name"] for row in rows}
    missing = [name for name in args if name not in found]
    if missing:
        raise errors.OpPrereqError(f"Network(s) not known: {', '.join(missing)}",
                                   errors.ECODE_NOENT)
    for values in rows:
        nic_ips = _InstanceNics(cl, list(values.get("inst_list") or []), values["uuid"])
        for line in NetworkInfoLines(values, nic_ips):
            ToStdout("%s", line)
    return constants.EXIT_SUCCESS


# --- The command table ------------------------------------------------------------------------

NETWORK_OPT = cli_option("--network", dest="network", default=None, metavar="NETWORK",
                         help="IPv4 network in CIDR notation (e.g. 192.0.2.0/24)")
GATEWAY_OPT = cli_option("--gateway", dest="gateway", default=None, metavar="GATEWAY",
                         help="IPv4 gateway (\"none\" to remove it)")
NETWORK6_OPT = cli_option("--network6", dest="network6", default=None,
                          metavar="NETWORK6", help="IPv6 network in CIDR notation")
GATEWAY6_OPT = cli_option("--gateway6", dest="gateway6", default=None,
                          metavar="GATEWAY6", help="IPv6 gateway")
MAC_PREFIX_OPT = cli_option("--mac-prefix", dest="mac_prefix", default=None,
                            metavar="MACPREFIX",
                            help="MAC prefix of the network's NICs (three octets)")
ADD_RESERVED_IPS_OPT = cli_option(
    "--add-reserved-ips", dest="add_reserved_ips", default=None, metavar="IPS",
    help="Comma-separated IP addresses to reserve for outside use")
REMOVE_RESERVED_IPS_OPT = cli_option(
    "--remove-reserved-ips", dest="remove_reserved_ips", default=None, metavar="IPS",
    help="Comma-separated IP addresses to release")
NOCONFLICTSCHECK_OPT = cli_option(
    "--no-conflicts-check", dest="conflicts_check", default=True, action="store_false",
    help="Do not check for conflicting IP addresses")
TAG_ADD_OPT = cli_option("--tags", dest="tags", default=None, metavar="TAG,...",
                         help="Comma-separated tags of the new network")
NIC_PARAMS_OPT = cli_option(
    "-N", "--nic-parameters", dest="nicparams", default=None, type=ParseKeyVal,
    metavar="mode=MODE,link=LINK[,vlan=VLAN]",
    help="NIC parameters of the connection (mode, link, vlan)")

commands: dict[str, cli.CommandDef] = {
    "add": (
        AddNetwork, [ArgUnknown(min=1, max=1)],
        [MAC_PREFIX_OPT, NETWORK_OPT, GATEWAY_OPT, ADD_RESERVED_IPS_OPT, NETWORK6_OPT,
         GATEWAY6_OPT, NOCONFLICTSCHECK_OPT, TAG_ADD_OPT]
        + SUBMIT_OPTS,
        "<network_name>", "Add a new IP network to the cluster"),
    "list": (
        ListNetworks, [ArgUnknown()],
        [NOHDR_OPT, SEP_OPT, UNITS_OPT, FIELDS_OPT, VERBOSE_OPT, FORCE_FILTER_OPT],
        "[<network_name>...]",
        "Lists the IP networks in the cluster. The available fields can be shown"
        " using the \"list-fields\" command (see the man page for details)."
        f" The default list is ({utils.CommaJoin(_LIST_DEF_FIELDS)})."),
    "list-fields": (
        ListNetworkFields, [ArgUnknown()], [NOHDR_OPT, SEP_OPT], "[fields...]",
        "Lists all available fields for networks"),
    "info": (
        ShowNetworkConfig, [ArgUnknown()], [], "[<network_name>...]",
        "Show information about the network(s)"),
    "remove": (
        RemoveNetwork, [ArgUnknown(min=1, max=1)],
        [FORCE_OPT, cli.DRY_RUN_OPT] + SUBMIT_OPTS, "[--dry-run] <network_id>",
        "Remove an existing network"),
    "modify": (
        SetNetworkParams, [ArgUnknown(min=1, max=1)],
        [cli.DRY_RUN_OPT] + SUBMIT_OPTS + [
            ADD_RESERVED_IPS_OPT, REMOVE_RESERVED_IPS_OPT, GATEWAY_OPT, MAC_PREFIX_OPT,
            NETWORK6_OPT, GATEWAY6_OPT],
        "<network_name>", "Alters the parameters of a network"),
    "rename": (
        RenameNetwork, [ArgUnknown(min=1, max=1), ArgUnknown(min=1, max=1)],
        list(SUBMIT_OPTS), "<network_name> <new_name>", "Rename a network"),
    "connect": (
        ConnectNetwork, [ArgUnknown(min=1, max=1), ArgGroup()],
        [NOCONFLICTSCHECK_OPT, NIC_PARAMS_OPT, cli.PRIORITY_OPT],
        "[--no-conflicts-check] [-N mode=MODE,link=LINK[,vlan=VLAN]] <network_name>"
        " [<node_group>...]",
        "Map a given network to the specified node groups with the given NIC"
        " parameters (all node groups when none is given)"),
    "disconnect": (
        DisconnectNetwork, [ArgUnknown(min=1, max=1), ArgGroup()],
        [cli.PRIORITY_OPT], "<network_name> [<node_group>...]",
        "Unmap a given network from the specified node groups (all node groups when"
        " none is given)"),
}
commands.update(tags.TagCommands(constants.TAG_NETWORK))

#: Other names of commands
aliases = {
    "show": "info",
}


def Main(argv: Sequence[str] | None = None) -> int:
    """Run gnt-network."""
    return cli.GenericMain(commands, aliases=aliases, argv=argv)
