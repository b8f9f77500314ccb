"""The one table of node RPC calls, read by both ends.

Each :class:`RpcCall` says what the master sends (argument names and their
encodings), how long it waits (a timeout class, or a function of the
arguments), which function runs it on the node, and how the answer is
post-processed. :class:`ganeti.rpc.node.RpcRunner` builds its ``call_<name>``
methods from this table and :mod:`ganeti.rpc.dispatch` finds the node-side
handler in it, so the two cannot drift apart. A call is added by adding an
entry here and writing its handler in ``ganeti.backend``.

Names, arguments and timeout classes are Ganeti's; ``get_file_info`` is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

from ganeti import constants, errors
from ganeti.rpc.encoding import ArgKind

# Guidelines for timeouts, as in Ganeti: calls the watcher makes and trivial
# queries are URGENT (1 min); reading a file or similar is FAST (5 min);
# most calls are NORMAL (15 min); long-running ones SLOW (1 h), 4HRS or 1DAY.
TMO_URGENT = constants.RPC_TMO_URGENT
TMO_FAST = constants.RPC_TMO_FAST
TMO_NORMAL = constants.RPC_TMO_NORMAL
TMO_SLOW = constants.RPC_TMO_SLOW
TMO_4HRS = constants.RPC_TMO_4HRS
TMO_1DAY = constants.RPC_TMO_1DAY


@dataclass(frozen=True)
class RpcArg:
    """One argument of a call."""
    name: str
    kind: ArgKind = ArgKind.NONE
    doc: str = ""


@dataclass(frozen=True)
class RpcCall:
    """One RPC call.

    ``handler`` is the dotted name of the node-side function, which gets the
    decoded arguments positionally and returns the payload (or raises
    ``backend.RPCFail``). ``single`` calls go to one node and return one
    result; the others take a node list and return a dict. With
    ``accept_offline`` a node marked offline is contacted anyway (``version``
    is used to re-add offline nodes).
    """
    name: str
    timeout: int | Callable[[Sequence[Any]], float]
    args: tuple[RpcArg, ...]
    handler: str
    doc: str
    single: bool = False
    accept_offline: bool = False
    postproc: Callable[[Any], Any] | None = None

    def GetTimeout(self, args: Sequence[Any]) -> float:
        """Return the read timeout for these (unencoded) arguments."""
        if callable(self.timeout):
            return self.timeout(args)
        return self.timeout

    @property
    def arg_names(self) -> list[str]:
        """The argument names, in order."""
        return [arg.name for arg in self.args]


def _TestDelayTimeout(args: Sequence[Any]) -> float:
    (duration,) = args
    return float(duration) + 5


def _A(name: str, kind: ArgKind = ArgKind.NONE, doc: str = "") -> RpcArg:
    return RpcArg(name, kind, doc)


_VERIFY_ARGS = (
    _A("checkdict", doc="What to verify: NV_* key -> parameters"),
    _A("cluster_name", doc="Cluster name"),
    _A("all_hvparams", doc="Hypervisor name -> hypervisor parameters"),
    _A("node_groups", doc="Node name -> group UUID"),
    _A("groups_cfg", doc="Group UUID -> group configuration"),
)

_CALL_LIST: list[RpcCall] = [
    # --- Cluster and node information ---------------------------------------
    RpcCall("version", TMO_URGENT, (), "ganeti.backend.node.GetVersion",
            "Query the node's protocol version", accept_offline=True),
    RpcCall("node_info", TMO_URGENT, (
        _A("storage_units", doc="List of (storage type, key, parameters) to"
           " report free/total space for"),
        _A("hv_specs", doc="List of (hypervisor name, hvparams) to report"
           " memory and CPU for"),
    ), "ganeti.backend.node.GetNodeInfo", "Return node information"),
    RpcCall("node_verify", TMO_NORMAL, _VERIFY_ARGS,
            "ganeti.backend.verify.VerifyNode",
            "Request verification of given parameters"),
    RpcCall("node_verify_light", TMO_NORMAL, _VERIFY_ARGS,
            "ganeti.backend.verify.VerifyNode",
            "Request verification of given parameters (before a node joins)"),
    RpcCall("node_has_ip_address", TMO_FAST, (_A("address", doc="IP address"),),
            "ganeti.backend.node.HasIpAddress",
            "Check whether the node has the given IP address", single=True),
    RpcCall("test_delay", _TestDelayTimeout, (_A("duration", doc="Seconds"),),
            "ganeti.backend.node.TestDelay",
            "Sleep for a fixed time on the given nodes"),
    # --- Files ------------------------------------------------------------------
    RpcCall("upload_file", TMO_NORMAL,
            (_A("file_name", ArgKind.FILE_DETAILS,
                "Local file, sent with contents, mode, owner and times"),),
            "ganeti.backend.files.UploadFile", "Upload a file"),
    RpcCall("write_ssconf_files", TMO_NORMAL,
            (_A("values", doc="ssconf key -> value"),),
            "ganeti.backend.files.WriteSsconfFiles", "Write ssconf files"),
    RpcCall("get_file_info", TMO_FAST,
            (_A("file_name", ArgKind.VIRTUAL_PATH, "Absolute file name"),),
            "ganeti.backend.files.GetFileInfo",
            "Return existence, size, mode, owner, mtime and SHA-1 of a"
            " Ganeti file"),
    # --- Job queue (sent to master candidates) -----------------------------------
    RpcCall("jobqueue_update", TMO_URGENT, (
        _A("file_name", ArgKind.VIRTUAL_PATH, "Job queue file"),
        _A("content", ArgKind.COMPRESS, "New contents"),
    ), "ganeti.backend.jobqueue.JobQueueUpdate", "Update job queue file"),
    RpcCall("jobqueue_purge", TMO_NORMAL, (),
            "ganeti.backend.jobqueue.JobQueuePurge", "Purge job queue",
            single=True),
    RpcCall("jobqueue_rename", TMO_URGENT,
            (_A("rename", ArgKind.VIRTUAL_PATH_PAIRS,
                "List of (old, new) job queue file names"),),
            "ganeti.backend.jobqueue.JobQueueRename", "Rename job queue files"),
    RpcCall("jobqueue_set_drain_flag", TMO_URGENT, (_A("flag"),),
            "ganeti.backend.jobqueue.JobQueueSetDrainFlag",
            "Set job queue drain flag"),
]


def _BuildTable(calls: list[RpcCall]) -> dict[str, RpcCall]:
    table: dict[str, RpcCall] = {}
    for call in calls:
        if call.name in table:
            raise errors.ProgrammerError(f"RPC call {call.name} declared twice")
        table[call.name] = call
    return table


#: All calls by name
CALLS: dict[str, RpcCall] = _BuildTable(_CALL_LIST)
