"""Instance creation mode "import": a new instance from an export
(``gnt-backup import``, ``gnt-instance add --src-node/--src-dir``).

``LUInstanceCreate`` calls :func:`CheckArguments` for this mode before
its own checks, and :func:`ImportDisks` once the new instance's disks
exist, instead of running the OS create scripts:

- the export is found: ``src_node`` and ``src_path`` given, or only one
  of them (a relative ``src_path``, or none: the instance's name, is
  looked for in the export lists of the nodes, the source node's or
  every node's);
- its ``config.ini`` is read (``export_info``) and checked
  (:mod:`ganeti.export_config`; an export of a newer version is refused
  before anything is created);
- what the opcode leaves open comes from the export: OS, disk template,
  disks and sizes, NICs (their MACs only when the instance keeps its
  exported name: the exported instance may still use them), hypervisor
  and its parameters, backend and OS parameters, tags;
- after the disks are created, each dump is copied from the source
  node's export directory into its disk through the import/export
  daemons (:mod:`ganeti.cmdlib.impexp`): the new instance's OS import
  script writes it (raw, when the export names no OS). A failed copy
  fails the creation, which removes the new disks and the instance.
"""

from __future__ import annotations

import os
from typing import Any

from ganeti import constants, errors, export_config, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import impexp
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit
from ganeti.cmdlib.node import ExpandNode


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _FindExport(lu: LogicalUnit, name: str, nodes: list[objects.Node]) -> objects.Node:
    """The first of ``nodes`` holding export ``name``."""
    uuids = [node.uuid for node in nodes if not node.offline]
    results = lu.rpc.call_export_list(uuids) if uuids else {}
    for node in nodes:
        res = results.get(node.uuid)
        if res is None or res.fail_msg:
            continue
        if name in (res.payload or []):
            return node
    raise errors.OpPrereqError(f"No export named '{name}' found on"
                               f" {'node ' + nodes[0].name if len(nodes) == 1 else 'any node'}",
                               errors.ECODE_NOENT)


def LocateExport(lu: LogicalUnit) -> tuple[objects.Node, str]:
    """(source node, export directory as the cluster sees it) of the opcode."""
    op: Any = lu.op
    cfg: Any = lu.cfg
    path = op.src_path
    if op.src_node or op.src_node_uuid:
        node = ExpandNode(cfg, op.src_node) if op.src_node else \
            cfg.GetNodeInfo(op.src_node_uuid)
        if node is None:
            raise errors.OpPrereqError(f"Node '{op.src_node_uuid}' not known",
                                       errors.ECODE_NOENT)
        if not path:
            _FindExport(lu, op.instance_name, [node])
            path = os.path.join(constants.DEFAULT_EXPORT_DIR, op.instance_name)
    else:
        name = os.path.basename(path) if path else op.instance_name
        nodes = sorted(cfg.GetAllNodesInfo().values(), key=lambda n: n.name)
        node = _FindExport(lu, name, nodes)
        path = path or os.path.join(constants.DEFAULT_EXPORT_DIR, name)
    if node.offline:
        raise errors.OpPrereqError(f"Source node {node.name} is offline",
                                   errors.ECODE_STATE)
    return node, path


def ReadExport(lu: LogicalUnit, node: objects.Node, path: str
               ) -> export_config.ExportInfo:
    """The checked configuration of the export ``path`` on ``node``."""
    result = lu.rpc.call_export_info(node.uuid, path)
    if result.fail_msg:
        raise errors.OpPrereqError(f"No export or invalid export found in {path} on node"
                                   f" {node.name}: {result.fail_msg}",
                                   errors.ECODE_INVAL)
    try:
        return export_config.Parse(str(result.payload))
    except export_config.ExportError as err:
        raise errors.OpPrereqError(f"Invalid export in {path} on node {node.name}:"
                                   f" {err}", errors.ECODE_INVAL) from None


def _NoNone(params: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in params.items() if value not in ("None",)}


def FillFromExport(op: Any, info: export_config.ExportInfo) -> None:
    """Fill the opcode's open fields from the export (explicit values win)."""
    if not op.os_type:
        if not info.os:
            raise _Inval("The export names no OS: give one (-o)")
        op.os_type = info.os
    if not op.disk_template:
        if not info.disk_template:
            raise _Inval("The export names no disk template: give one (-t)")
        op.disk_template = info.disk_template
    if not op.disks and op.disk_template != constants.DT_DISKLESS:
        if not info.disks:
            raise _Inval("No disks given and the export has none")
        op.disks = [{constants.IDISK_SIZE: disk.size,
                     **({constants.IDISK_NAME: disk.name} if disk.name else {})}
                    for disk in info.disks]
    if not op.nics:
        same_name = op.instance_name == info.name
        nics = []
        for nic in info.nics:
            spec = dict(nic)
            if not same_name or not spec.get(constants.INIC_MAC):
                spec[constants.INIC_MAC] = constants.VALUE_GENERATE
            if spec.get(constants.INIC_NETWORK):
                # Mode and link come from the network's connection
                for key in (constants.NIC_MODE, constants.NIC_LINK, constants.NIC_VLAN):
                    spec.pop(key, None)
            nics.append(spec)
        op.nics = nics
    if not op.tags:
        op.tags = list(info.tags)
    same_hv = not op.hypervisor or op.hypervisor == info.hypervisor
    if not op.hypervisor and info.hypervisor:
        op.hypervisor = info.hypervisor
    if same_hv:
        op.hvparams = {**_NoNone(info.hvparams), **(op.hvparams or {})}
    op.beparams = {**_NoNone(info.beparams), **(op.beparams or {})}
    op.osparams = {**_NoNone(info.osparams), **(op.osparams or {})}
    if info.osparams_private:
        op.osparams_private = {**_NoNone(info.osparams_private),
                               **(op.osparams_private or {})}


def _IdentifyDefaults(lu: LogicalUnit) -> None:
    """Drop the parameters equal to the cluster's defaults (they then
    follow the defaults), for ``identify_defaults``."""
    op: Any = lu.op
    cluster = lu.cfg.GetClusterInfo()  # type: ignore[union-attr]
    hvname = op.hypervisor or cluster.primary_hypervisor
    hv_defaults = cluster.SimpleFillHV(hvname, op.os_type, {})
    be_defaults = cluster.SimpleFillBE({})
    for params, defaults in ((op.hvparams, hv_defaults), (op.beparams, be_defaults)):
        for key in list(params or {}):
            if key in defaults and str(defaults[key]) == str(params[key]):
                del params[key]


def CheckCompression(cfg: Any, compress: str | None) -> str:
    """The transfer's compression tool: "none" or one of the cluster's."""
    compress = compress or constants.IEC_NONE
    tools = cfg.GetClusterInfo().compression_tools or []
    if compress != constants.IEC_NONE and compress not in tools:
        raise _Inval(f"Compression tool '{compress}' is not one of the cluster's"
                     f" compression tools ({', '.join(tools) or 'none'})")
    return compress


def CheckArguments(lu: LogicalUnit) -> None:
    """Find and read the export; fill the opcode from it. Keeps the source
    node and the export on the LU (``import_node``, ``import_path``,
    ``import_info``)."""
    op: Any = lu.op
    if op.src_path and not os.path.isabs(op.src_path):
        op.src_path = os.path.join(constants.DEFAULT_EXPORT_DIR, op.src_path)
    op.instance_name = op.instance_name.strip().lower()
    CheckCompression(lu.cfg, op.compress)
    node, path = LocateExport(lu)
    info = ReadExport(lu, node, path)
    op.src_node, op.src_node_uuid, op.src_path = node.name, node.uuid, path
    FillFromExport(op, info)
    if op.identify_defaults:
        _IdentifyDefaults(lu)
    lu.import_node = node  # type: ignore[attr-defined]
    lu.import_path = path  # type: ignore[attr-defined]
    lu.import_info = info  # type: ignore[attr-defined]


def ImportDisks(lu: LogicalUnit, instance: objects.Instance,
                feedback_fn: FeedbackFn) -> None:
    """Copy each dump of the export into the new instance's disk;
    OpExecError if one fails."""
    info: export_config.ExportInfo = lu.import_info  # type: ignore[attr-defined]
    src: objects.Node = lu.import_node  # type: ignore[attr-defined]
    path: str = lu.import_path  # type: ignore[attr-defined]
    cfg: Any = lu.cfg
    disks = cfg.GetInstanceDisks(instance.uuid)
    dumps = {disk.index: disk.dump for disk in info.disks}
    wanted = [(idx, disk) for idx, disk in enumerate(disks) if idx in dumps]
    if not wanted:
        return
    pnode = cfg.GetNodeInfo(instance.primary_node)
    feedback_fn("* running the instance OS import scripts..." if info.os else
                "* copying the export's disk images...")
    transfers = []
    for idx, disk in wanted:
        source = (constants.IEIO_FILE, [os.path.join(path, dumps[idx])])
        dest = (constants.IEIO_SCRIPT, [disk.ToDict(), idx]) if info.os else \
            (constants.IEIO_RAW_DISK, [disk.ToDict()])
        transfers.append(impexp.DiskTransfer(f"disk/{idx}", source[0], source[1],
                                             dest[0], dest[1]))
    try:
        disks_mod.AssembleOnNodes(lu, instance, wanted, pnode.uuid)
        results = impexp.TransferInstanceData(
            lu, feedback_fn, src.uuid, pnode.uuid, pnode.secondary_ip or pnode.primary_ip,
            getattr(lu.op, "compress", None) or constants.IEC_NONE, instance, transfers)
    finally:
        disks_mod.ShutdownOnNodes(lu, instance, [disk for _, disk in wanted],
                                  pnode.uuid, pnode.uuid)
    failed = [str(idx) for (idx, _), ok in zip(wanted, results) if not ok]
    if failed:
        raise errors.OpExecError(f"Importing disk(s) {', '.join(failed)} of instance"
                                 f" {instance.name} from {path} on node {src.name}"
                                 " failed")
