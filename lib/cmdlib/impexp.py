"""Disk transfers between nodes through the import/export daemon, master side.

A transfer copies one stream (a disk's data, later an OS export script's
output) from a source node to a destination node. As Ganeti does it:

1. ``import_start`` on the destination: its daemon listens (TLS, the
   node certificates, on the destination's secondary address, an
   ephemeral port) and writes what it receives to the sink;
2. ``impexp_status`` on the destination until the listening port is known;
3. ``export_start`` on the source with that address and port: its daemon
   connects and sends the source's data, after a random "magic" string the
   importer checks, so only the export of this transfer is accepted;
4. both daemons are polled (progress goes to the job's feedback, at most
   every few seconds) until both have an exit status; a failure on one
   side aborts the other;
5. ``impexp_cleanup`` on both nodes, whatever happened.

Transfers run one after the other; each says whether it succeeded, and the
caller decides what a failed transfer means (``gnt-instance move`` undoes
the move).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ganeti import constants, errors, objects, utils
from ganeti.cmdlib.base import FeedbackFn, LogicalUnit, NodeName

#: Seconds between two status polls of the daemons
POLL_INTERVAL = 0.5
#: Seconds between two progress messages in the job's feedback
PROGRESS_INTERVAL = 5.0
#: Seconds the importer waits for the exporter's connection
CONNECT_TIMEOUT = 60
#: Seconds allowed for the importer to report its listening port
LISTEN_TIMEOUT = 60
#: The clock of the timeouts (tests replace it)
Clock = time.monotonic


@dataclasses.dataclass
class DiskTransfer:
    """One stream to copy: a name for messages ("disk/0"), and the source
    and destination as (IEIO type, arguments), e.g.
    ``(constants.IEIO_RAW_DISK, [disk dict])``."""
    name: str
    src_io: str
    src_args: list[Any]
    dest_io: str
    dest_args: list[Any]


def DaemonStatus(lu: LogicalUnit, node_uuid: str, name: str) -> objects.ImportExportStatus | None:
    """The daemon's status, or None while it has written none; OpExecError
    when the node cannot be asked."""
    result = lu.rpc.call_impexp_status(node_uuid, [name])
    if result.fail_msg:
        raise errors.OpExecError(f"Cannot get the status of {name} on node"
                                 f" {NodeName(lu.cfg, node_uuid)}: {result.fail_msg}")
    payload = result.payload or [None]
    if payload[0] is None:
        return None
    return objects.ImportExportStatus.FromDict(payload[0])


def ProgressText(label: str, status: objects.ImportExportStatus) -> str:
    parts = [f"{status.progress_mbytes or 0:.1f} MiB"]
    if status.progress_throughput:
        parts.append(f"{status.progress_throughput:.1f} MiB/s")
    if status.progress_percent is not None:
        parts.append(f"{status.progress_percent}%")
    if status.progress_eta is not None:
        parts.append(f"ETA {utils.FormatSeconds(status.progress_eta)}")
    return f"{label}: sent {', '.join(parts)}"


def FailureText(status: objects.ImportExportStatus | None) -> str | None:
    """Why a finished daemon failed, or None if it succeeded or runs."""
    if status is None or status.exit_status is None:
        return None
    if status.exit_status == 0:
        return None
    text = status.error_message or f"exit status {status.exit_status}"
    if status.recent_output:
        text += "; last output: " + " | ".join(status.recent_output[-3:])
    return text


class _Transfer:
    """The two daemons of one transfer."""

    def __init__(self, lu: LogicalUnit, feedback_fn: FeedbackFn, src: str, dest: str,
                 dest_ip: str, opts: objects.ImportExportOptions,
                 instance: dict[str, Any], dt: DiskTransfer) -> None:
        self.lu, self.fb, self.src, self.dest = lu, feedback_fn, src, dest
        self.dest_ip, self.opts, self.instance, self.dt = dest_ip, opts, instance, dt
        self.imp: str | None = None
        self.exp: str | None = None

    def _Name(self, node: str) -> str:
        return NodeName(self.lu.cfg, node)

    def Start(self) -> None:
        """Start the importer, wait for its port, start the exporter."""
        lu, dt = self.lu, self.dt
        result = lu.rpc.call_import_start(self.dest, self.opts.ToDict(), self.instance,
                                          dt.name, (dt.dest_io, dt.dest_args))
        if result.fail_msg:
            raise errors.OpExecError(f"Cannot start the import of {dt.name} on node"
                                     f" {self._Name(self.dest)}: {result.fail_msg}")
        self.imp = result.payload
        deadline = Clock() + LISTEN_TIMEOUT
        while True:
            status = DaemonStatus(lu, self.dest, self.imp)
            failure = FailureText(status)
            if failure:
                raise errors.OpExecError(f"The import of {dt.name} on node"
                                         f" {self._Name(self.dest)} failed: {failure}")
            if status is not None and status.listen_port:
                port = status.listen_port
                break
            if Clock() > deadline:
                raise errors.OpExecError(
                    f"The import of {dt.name} on node {self._Name(self.dest)} did not"
                    f" report a listening port within {LISTEN_TIMEOUT} seconds")
            time.sleep(POLL_INTERVAL)
        result = lu.rpc.call_export_start(self.src, self.opts.ToDict(), self.dest_ip, port,
                                          self.instance, dt.name, (dt.src_io, dt.src_args))
        if result.fail_msg:
            raise errors.OpExecError(f"Cannot start the export of {dt.name} on node"
                                     f" {self._Name(self.src)}: {result.fail_msg}")
        self.exp = result.payload

    def Wait(self) -> None:
        """Poll both daemons until both ended; OpExecError naming the side
        that failed (the other side is aborted)."""
        assert self.imp is not None and self.exp is not None
        last_report = Clock()
        while True:
            exp = DaemonStatus(self.lu, self.src, self.exp)
            imp = DaemonStatus(self.lu, self.dest, self.imp)
            for side, node, status in (("export", self.src, exp), ("import", self.dest, imp)):
                failure = FailureText(status)
                if failure:
                    raise errors.OpExecError(
                        f"The {side} of {self.dt.name} on node {self._Name(node)}"
                        f" failed: {failure}")
            if exp is not None and imp is not None and \
                    exp.exit_status == 0 and imp.exit_status == 0:
                self.fb(f"{self.dt.name}: {imp.progress_mbytes or 0:.1f} MiB transferred")
                return
            if exp is not None and Clock() - last_report >= PROGRESS_INTERVAL:
                self.fb(ProgressText(self.dt.name, exp))
                last_report = Clock()
            time.sleep(POLL_INTERVAL)

    def Cleanup(self, failed: bool) -> None:
        """Abort (after a failure) and clean both daemons up; problems are
        warnings."""
        for node, name in ((self.src, self.exp), (self.dest, self.imp)):
            if name is None:
                continue
            if failed:
                self.lu.rpc.call_impexp_abort(node, name)
            result = self.lu.rpc.call_impexp_cleanup(node, name)
            if result.fail_msg:
                self.lu.LogWarning(f"Cannot clean up {name} on node"
                                   f" {self._Name(node)}: {result.fail_msg}")


def TransferInstanceData(lu: LogicalUnit, feedback_fn: FeedbackFn, src_node_uuid: str,
                         dest_node_uuid: str, dest_ip: str, compress: str,
                         instance: objects.Instance,
                         transfers: list[DiskTransfer]) -> list[bool]:
    """Run the transfers from the source to the destination node one after
    the other; return per transfer whether it succeeded (a failure is
    reported as a warning with its reason)."""
    from ganeti.cmdlib import instance_utils as iu
    inst_dict = iu.InstanceRpcDict(lu.cfg, instance)
    results = []
    for dt in transfers:
        opts = objects.ImportExportOptions(
            key_name=None, ca_pem=None, compress=compress or constants.IEC_NONE,
            magic=utils.GenerateSecret(12), ipv6=":" in dest_ip,
            connect_timeout=CONNECT_TIMEOUT, listen_address=dest_ip)
        transfer = _Transfer(lu, feedback_fn, src_node_uuid, dest_node_uuid, dest_ip, opts,
                             inst_dict, dt)
        ok = False
        try:
            feedback_fn(f"Copying {dt.name} from node {NodeName(lu.cfg, src_node_uuid)} to"
                        f" node {NodeName(lu.cfg, dest_node_uuid)}")
            transfer.Start()
            transfer.Wait()
            ok = True
        except errors.OpExecError as err:
            lu.LogWarning(str(err))
        finally:
            transfer.Cleanup(failed=not ok)
        results.append(ok)
    return results
