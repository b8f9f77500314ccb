"""Exports to another cluster (``OpBackupPrepare``/``OpBackupExport`` with
mode "remote"), the source's half of a move between clusters.

``LUBackupPrepare`` calls :func:`PrepareRemoteExport`: a per-move X509 key
and certificate on the instance's primary node, handed out signed with the
cluster domain secret (see :mod:`ganeti.cmdlib.rie`), with the handshake
that proves to the destination that we share the secret.
``LUBackupExport`` calls :func:`CheckRemoteExport` in ``CheckPrereq`` and,
with the instance shut down (or snapshots taken), :func:`ExportRemote`:
one exporter per disk on the primary node, all at once (the destination's
importers wait for their connections in parallel), each presenting our
per-move certificate and accepting only the destination's CA.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ganeti import constants, errors, objects
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import impexp, rie
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit


def PrepareRemoteExport(lu: LogicalUnit) -> dict[str, Any]:
    """Create the per-move key on the primary node; Ganeti's answer:
    ``{"handshake": ..., "x509_key_name": [name, hmac, salt], "x509_ca":
    signed PEM}``."""
    instance: objects.Instance = lu.instance  # type: ignore[attr-defined]
    cds = rie.ReadDomainSecret()
    name, cert_pem = rie.CreateCertificate(lu, instance.primary_node)
    return {
        "handshake": rie.ComputeHandshake(cds),
        "x509_key_name": rie.SignKeyName(cds, name),
        "x509_ca": rie.SignCertificate(cds, cert_pem),
    }


@dataclasses.dataclass
class RemoteExportState:
    """What :func:`CheckRemoteExport` verified, for :func:`ExportRemote`.

    ``disks`` are the disks sent, in order (default: the instance's; a
    caller exporting snapshots puts them here); ``assemble``: whether
    ExportRemote assembles them on the primary node first (and shuts them
    down afterwards unless the instance's disks are marked active).
    """
    key_name: str
    dest_ca_pem: str
    destinations: list[tuple[str, int, str]]
    disks: list[objects.Disk]
    assemble: bool = True


def _Prereq(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def CheckRemoteExport(lu: LogicalUnit) -> RemoteExportState:
    """Verify the key name, the destination's CA and the per-disk
    destinations of ``lu.op`` against the cluster domain secret."""
    op: Any = lu.op
    instance: objects.Instance = lu.instance  # type: ignore[attr-defined]
    cds = rie.ReadDomainSecret()
    if not op.x509_key_name:
        raise _Prereq("Missing X509 key name for remote export")
    try:
        key_name = rie.CheckKeyName(cds, op.x509_key_name)
    except errors.GenericError as err:
        raise _Prereq(f"Invalid X509 key name: {err}") from None
    if not op.destination_x509_ca:
        raise _Prereq("Destination X509 CA must be provided for remote export")
    dest_ca_pem = rie.CheckSignedCertificate(cds, op.destination_x509_ca,
                                             "destination X509 CA")
    cfg: Any = lu.cfg
    disks = cfg.GetInstanceDisks(instance.uuid)
    targets = op.target_node
    if not isinstance(targets, list):
        raise _Prereq("Remote export needs a list of disk destinations"
                      f" (target_node), got {targets!r}")
    if len(targets) != len(disks):
        raise _Prereq(f"Wrong number of disk destinations: {len(targets)} given,"
                      f" instance {instance.name} has {len(disks)} disk(s)")
    destinations = []
    for idx, info in enumerate(targets):
        try:
            destinations.append(rie.CheckDiskInfo(cds, idx, info))
        except errors.GenericError as err:
            raise _Prereq(f"Destination information for disk {idx} is invalid:"
                          f" {err}") from None
    return RemoteExportState(key_name, dest_ca_pem, destinations, list(disks))


class _Exporter:
    """The exporter of one disk."""

    def __init__(self, idx: int, host: str, port: int) -> None:
        self.idx, self.host, self.port = idx, host, port
        self.name: str | None = None
        self.ok: bool | None = None
        self.label = f"disk/{idx}"


def _StartAll(lu: LogicalUnit, feedback_fn: FeedbackFn, state: RemoteExportState,
              node: str, inst_dict: dict[str, Any], op: Any) -> list[_Exporter]:
    exporters = []
    for idx, (disk, (host, port, magic)) in enumerate(zip(state.disks,
                                                          state.destinations)):
        exp = _Exporter(idx, host, port)
        exporters.append(exp)
        opts = objects.ImportExportOptions(
            key_name=state.key_name, ca_pem=state.dest_ca_pem,
            compress=op.compress or constants.IEC_NONE, magic=magic,
            ipv6=":" in host, connect_timeout=constants.RIE_CONNECT_TIMEOUT)
        feedback_fn(f"Sending disk {idx} to {host}:{port}")
        result = lu.rpc.call_export_start(node, opts.ToDict(), host, port, inst_dict,
                                          exp.label,
                                          (constants.IEIO_RAW_DISK, [disk.ToDict()]))
        if result.fail_msg:
            lu.LogWarning(f"Cannot start the export of disk {idx} to {host}:{port}:"
                          f" {result.fail_msg}")
            exp.ok = False
            continue
        exp.name = result.payload
    return exporters


def _WaitAll(lu: LogicalUnit, feedback_fn: FeedbackFn, node: str,
             exporters: list[_Exporter]) -> None:
    last_report = impexp.Clock()
    while any(exp.ok is None for exp in exporters):
        report = impexp.Clock() - last_report >= impexp.PROGRESS_INTERVAL
        for exp in exporters:
            if exp.ok is not None or exp.name is None:
                continue
            status = impexp.DaemonStatus(lu, node, exp.name)
            failure = impexp.FailureText(status)
            if failure:
                lu.LogWarning(f"The export of disk {exp.idx} to {exp.host}:{exp.port}"
                              f" failed: {failure}")
                exp.ok = False
            elif status is not None and status.exit_status == 0:
                feedback_fn(f"Disk {exp.idx} sent ({status.progress_mbytes or 0:.1f}"
                            " MiB)")
                exp.ok = True
            elif status is not None and report:
                feedback_fn(impexp.ProgressText(exp.label, status))
        if report:
            last_report = impexp.Clock()
        if any(exp.ok is None for exp in exporters):
            time.sleep(impexp.POLL_INTERVAL)


def ExportRemote(lu: LogicalUnit, feedback_fn: FeedbackFn,
                 state: RemoteExportState) -> list[bool]:
    """Send every disk to its destination; one bool per disk. The
    exporters, the per-move key and (if assembled here) the disks are
    cleaned up whatever happens."""
    instance: objects.Instance = lu.instance  # type: ignore[attr-defined]
    node = instance.primary_node
    inst_dict = iu.InstanceRpcDict(lu.cfg, instance)
    exporters: list[_Exporter] = []
    assembled = False
    try:
        if state.assemble:
            disks_mod.AssembleOnNodes(lu, instance, list(enumerate(state.disks)), node)
            assembled = True
        exporters = _StartAll(lu, feedback_fn, state, node, inst_dict, lu.op)
        _WaitAll(lu, feedback_fn, node, exporters)
    except errors.OpExecError as err:
        lu.LogWarning(f"Remote export of instance {instance.name} failed: {err}")
    finally:
        for exp in exporters:
            if exp.name is None:
                continue
            if not exp.ok:
                lu.rpc.call_impexp_abort(node, exp.name)
            result = lu.rpc.call_impexp_cleanup(node, exp.name)
            if result.fail_msg:
                lu.LogWarning(f"Cannot clean up {exp.name}: {result.fail_msg}")
        if assembled:
            cfg: Any = lu.cfg
            current = cfg.GetInstanceInfo(instance.uuid)
            if current is None or not current.disks_active:
                disks_mod.ShutdownOnNodes(lu, instance, state.disks, node, node)
        rie.RemoveCertificate(lu, node, state.key_name)
    results = [bool(exp.ok) for exp in exporters]
    # Disks whose export never started (an earlier error) count as failed
    results += [False] * (len(state.disks) - len(results))
    return results
