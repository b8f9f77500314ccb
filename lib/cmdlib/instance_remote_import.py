"""Instance creation mode "remote-import": the destination's half of a move
between clusters (see :mod:`ganeti.cmdlib.rie` for the signed messages).

``LUInstanceCreate`` calls :func:`CheckArguments` for this mode (the
source's handshake and signed CA must verify against our cluster domain
secret) and, once the new instance's disks exist, :func:`ImportDisks`
instead of running the OS create scripts:

1. a per-move X509 key and certificate on the new primary node;
2. one importer per disk there, all at once, listening on the node's
   primary address, presenting that certificate, accepting only
   exporters whose certificate the source's CA signed, and expecting a
   per-disk magic;
3. once all listen, the signed destinations (host, port, magic per disk)
   and our signed CA go to the job's log as one entry of type
   ``remote-import`` (``constants.ELOG_REMOTE_IMPORT``), where
   ``move-instance`` reads them and hands them to the source's export;
4. the importers are polled until all have ended (an exporter that never
   connects makes its importer fail after ``RIE_CONNECT_TIMEOUT``);
5. importers and key are removed whatever happened.

A failed import raises OpExecError; ``LUInstanceCreate`` then removes the
disks and the instance, as for any failed creation.
"""

from __future__ import annotations

import time
from typing import Any

from ganeti import constants, errors, objects, utils
from ganeti.cmdlib import disks as disks_mod
from ganeti.cmdlib import impexp, rie
from ganeti.cmdlib import instance_utils as iu
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit


def CheckArguments(lu: LogicalUnit) -> None:
    """Check the remote-import fields of the opcode; keeps the domain
    secret and the source's CA on the LU (``rie_cds``, ``rie_source_ca``)."""
    op: Any = lu.op
    if not op.source_handshake:
        raise errors.OpPrereqError("Missing source handshake", errors.ECODE_INVAL)
    if not op.source_instance_name:
        raise errors.OpPrereqError("Missing source instance name", errors.ECODE_INVAL)
    cds = rie.ReadDomainSecret()
    problem = rie.CheckHandshake(cds, op.source_handshake)
    if problem:
        raise errors.OpPrereqError(f"Invalid handshake: {problem}", errors.ECODE_INVAL)
    lu.rie_source_ca = rie.CheckSignedCertificate(  # type: ignore[attr-defined]
        cds, op.source_x509_ca, "source X509 CA")
    lu.rie_cds = cds  # type: ignore[attr-defined]
    if op.no_install:
        raise errors.OpPrereqError("Remote imports copy the source's disks: the"
                                   " no-install option does not apply",
                                   errors.ECODE_INVAL)


class _Importer:
    """The importer of one disk."""

    def __init__(self, idx: int, magic: str) -> None:
        self.idx, self.magic = idx, magic
        self.name: str | None = None
        self.port: int | None = None
        self.ok: bool | None = None
        self.label = f"disk/{idx}"


def _StartAll(lu: LogicalUnit, instance: objects.Instance, disks: list[objects.Disk],
              address: str, key_name: str, source_ca: str,
              importers: list[_Importer]) -> None:
    """Start every importer, adding each to ``importers`` (for the cleanup)
    before it starts; OpExecError if one cannot be started."""
    op: Any = lu.op
    inst_dict = iu.InstanceRpcDict(lu.cfg, instance)
    base = utils.GenerateSecret(6)
    for idx, disk in enumerate(disks):
        imp = _Importer(idx, f"{base}-{idx}")
        importers.append(imp)
        opts = objects.ImportExportOptions(
            key_name=key_name, ca_pem=source_ca,
            compress=op.compress or constants.IEC_NONE, magic=imp.magic,
            ipv6=":" in address, connect_timeout=constants.RIE_CONNECT_TIMEOUT,
            listen_address=address)
        result = lu.rpc.call_import_start(instance.primary_node, opts.ToDict(), inst_dict,
                                          imp.label,
                                          (constants.IEIO_RAW_DISK, [disk.ToDict()]))
        result.Raise(f"Cannot start the import of disk {idx}")
        imp.name = result.payload
        status = impexp.DaemonStatus(lu, instance.primary_node, imp.name)
        if status is None or not status.listen_port:
            raise errors.OpExecError(f"The import of disk {idx} did not report its"
                                     f" port: {impexp.FailureText(status) or 'no status'}")
        imp.port = status.listen_port
        lu.LogInfo(f"Disk {idx} is now listening")


def _WaitAll(lu: LogicalUnit, feedback_fn: FeedbackFn, node: str,
             importers: list[_Importer]) -> None:
    """Poll until every importer ended; OpExecError at the first failure."""
    connected: set[int] = set()
    last_report = impexp.Clock()
    while any(imp.ok is None for imp in importers):
        report = impexp.Clock() - last_report >= impexp.PROGRESS_INTERVAL
        for imp in importers:
            if imp.ok is not None:
                continue
            assert imp.name is not None
            status = impexp.DaemonStatus(lu, node, imp.name)
            failure = impexp.FailureText(status)
            if failure:
                imp.ok = False
                raise errors.OpExecError(f"Disk {imp.idx} failed to receive data:"
                                         f" {failure}")
            if status is None:
                continue
            if status.connected and imp.idx not in connected:
                connected.add(imp.idx)
                feedback_fn(f"Disk {imp.idx} is now receiving data")
            if status.exit_status == 0:
                imp.ok = True
                feedback_fn(f"Disk {imp.idx} finished receiving data"
                            f" ({status.progress_mbytes or 0:.1f} MiB)")
            elif report and status.connected:
                feedback_fn(impexp.ProgressText(imp.label, status).replace(": sent", ":"
                                                                        " received"))
        if report:
            last_report = impexp.Clock()
        if any(imp.ok is None for imp in importers):
            time.sleep(impexp.POLL_INTERVAL)


def ImportDisks(lu: LogicalUnit, instance: objects.Instance,
                feedback_fn: FeedbackFn) -> None:
    """Receive the disks of ``instance`` (just created, not started) from
    the source cluster; OpExecError when any disk fails."""
    cds: str = lu.rie_cds  # type: ignore[attr-defined]
    source_ca: str = lu.rie_source_ca  # type: ignore[attr-defined]
    cfg: Any = lu.cfg
    node = instance.primary_node
    pnode = cfg.GetNodeInfo(node)
    disks = cfg.GetInstanceDisks(instance.uuid)
    feedback_fn("* preparing the remote import")
    key_name, cert_pem = rie.CreateCertificate(lu, node)
    importers: list[_Importer] = []
    assembled = False
    failed = True
    try:
        signed_ca = rie.SignCertificate(cds, cert_pem)
        disks_mod.AssembleOnNodes(lu, instance, list(enumerate(disks)), node)
        assembled = True
        _StartAll(lu, instance, disks, pnode.primary_ip, key_name, source_ca, importers)
        salt = utils.GenerateSecret(8)
        info = [rie.ComputeDiskInfo(cds, salt, imp.idx, pnode.primary_ip,
                                    int(imp.port or 0), imp.magic) for imp in importers]
        feedback_fn(constants.ELOG_REMOTE_IMPORT, {"disks": info, "x509_ca": signed_ca})
        _WaitAll(lu, feedback_fn, node, importers)
        failed = False
    finally:
        for imp in importers:
            if imp.name is None:
                continue
            if failed and imp.ok is None:
                lu.rpc.call_impexp_abort(node, imp.name)
            result = lu.rpc.call_impexp_cleanup(node, imp.name)
            if result.fail_msg:
                lu.LogWarning(f"Cannot clean up {imp.name}: {result.fail_msg}")
        if assembled:
            disks_mod.ShutdownOnNodes(lu, instance, disks, node, node)
        rie.RemoveCertificate(lu, node, key_name)
