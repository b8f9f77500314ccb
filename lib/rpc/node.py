"""The master's RPC client: :class:`RpcRunner` and node address resolvers.

``RpcRunner`` has one ``call_<name>`` method per entry of
:data:`ganeti.rpc.defs.CALLS`, built when this module is imported::

    runner = RpcRunner.FromConfig(cfg)
    results = runner.call_version(node_uuids)      # {uuid: RpcResult}
    runner.call_jobqueue_purge(node_uuid)          # one RpcResult

A call's arguments follow the node list, in the order the table declares
them; wrap a value in :class:`ganeti.rpc.encoding.PerNode` to send each node
its own value. Every method also takes ``read_timeout=`` to override the
call's timeout class.

A resolver maps the names the caller uses (node UUIDs or names) to where
each node daemon listens. Addresses and ports come from the configuration,
so many node daemons can share one machine (a virtual cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from collections.abc import Callable, Iterable, Mapping, Sequence

from ganeti import constants, daemon, errors, serializer
from ganeti.rpc import defs, encoding
from ganeti.rpc.client import (ProcessRequests, RpcRequest, RpcResult,
                               RpcSslConfig, RequestToResult)


@dataclass(frozen=True)
class NodeEndpoint:
    """Where a node's daemon listens; ``offline`` nodes are not contacted."""
    name: str
    address: str
    port: int = constants.DEFAULT_NODED_PORT
    offline: bool = False


def _PortOrDefault(port: int | None) -> int:
    """The given port, or the cluster's node daemon port."""
    return daemon.GetDaemonPort(constants.NODED) if port is None else port


class Resolver(Protocol):
    """Maps node keys to endpoints, in the order given."""

    def __call__(self, keys: Sequence[str],
                 accept_offline: bool) -> list[NodeEndpoint]: ...


class StaticResolver:
    """Endpoints from a mapping: ``{key: (address, port)}``, an address or
    a :class:`NodeEndpoint`.

    A key not in the mapping is taken to be a host name or address, with
    the default port. Keys in ``offline`` are marked offline.
    """

    def __init__(self, endpoints: Mapping[str, Any],
                 offline: Iterable[str] = (),
                 default_port: int | None = None):
        self._endpoints = dict(endpoints)
        self._offline = frozenset(offline)
        self._default_port = _PortOrDefault(default_port)

    def _One(self, key: str, accept_offline: bool) -> NodeEndpoint:
        value = self._endpoints.get(key, key)
        if isinstance(value, NodeEndpoint):
            endpoint = value
        elif isinstance(value, (tuple, list)):
            endpoint = NodeEndpoint(key, value[0], int(value[1]))
        else:
            endpoint = NodeEndpoint(key, str(value), self._default_port)
        offline = (endpoint.offline or key in self._offline) and not accept_offline
        if offline != endpoint.offline:
            endpoint = NodeEndpoint(endpoint.name, endpoint.address,
                                    endpoint.port, offline)
        return endpoint

    def __call__(self, keys: Sequence[str], accept_offline: bool) -> list[NodeEndpoint]:
        return [self._One(key, accept_offline) for key in keys]


def NodeToEndpoint(node: Any, accept_offline: bool = False,
                   default_port: int = constants.DEFAULT_NODED_PORT) -> NodeEndpoint:
    """Build the endpoint of a configuration ``objects.Node``.

    A node may carry its own daemon address and port (``noded_address``,
    ``noded_port``, for virtual clusters); otherwise its primary IP and the
    cluster's port are used.
    """
    address = node.noded_address or node.primary_ip
    port = node.noded_port or default_port
    offline = bool(node.offline) and not accept_offline
    return NodeEndpoint(node.name, address, int(port), offline)


class ConfigResolver:
    """Endpoints from a ConfigWriter (or anything with GetNodeInfo and
    GetAllNodesInfo keyed by node UUID; GetAllNodesReadOnly is used where
    there is one, which copies nothing).

    Keys not found as UUIDs are taken to be host names, as in Ganeti.
    """

    def __init__(self, cfg: Any, default_port: int | None = None):
        self._cfg = cfg
        self._default_port = _PortOrDefault(default_port)

    def __call__(self, keys: Sequence[str], accept_offline: bool) -> list[NodeEndpoint]:
        read_only = getattr(self._cfg, "GetAllNodesReadOnly", None)
        if read_only is not None:
            nodes = read_only()
        elif len(keys) == 1:
            nodes = {keys[0]: self._cfg.GetNodeInfo(keys[0])}
        else:
            nodes = self._cfg.GetAllNodesInfo()
        result = []
        for key in keys:
            node = nodes.get(key)
            if node is None:
                result.append(NodeEndpoint(key, key, self._default_port))
            else:
                result.append(NodeToEndpoint(node, accept_offline,
                                             self._default_port))
        return result


_OBJECT_KINDS = frozenset([encoding.ArgKind.OBJECT_DICT,
                           encoding.ArgKind.OBJECT_DICT_LIST])


def _HasDrbdDisk(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get("dev_type") == constants.DT_DRBD8:
            return True
        return any(_HasDrbdDisk(value[key]) for key in ("disks", "children")
                   if key in value)
    if isinstance(value, list):
        return any(_HasDrbdDisk(item) for item in value)
    return False


def AnnotateDrbdDisks(value: Any, node_key: str,
                      ip_of: Callable[[str], str | None]) -> Any:
    """A copy of the encoded argument ``value`` in which every DRBD disk
    dict (at any depth: instance disks, children) carries the
    ``dynamic_params`` of ``node_key``'s end: both ends' secondary
    addresses and minors, and the port (Ganeti's per-node disk
    annotation). Disks not living on the node are left as they are."""
    if isinstance(value, list):
        return [AnnotateDrbdDisks(item, node_key, ip_of) for item in value]
    if not isinstance(value, dict):
        return value
    result = dict(value)
    for key in ("disks", "children"):
        if isinstance(result.get(key), list):
            result[key] = AnnotateDrbdDisks(result[key], node_key, ip_of)
    lid = result.get("logical_id")
    if result.get("dev_type") == constants.DT_DRBD8 and isinstance(lid, (list, tuple)) \
            and len(lid) == 6 and node_key in (lid[0], lid[1]):
        node_a, node_b, port, minor_a, minor_b, _ = lid
        local, remote = (node_a, node_b) if node_key == node_a else (node_b, node_a)
        lminor, rminor = (minor_a, minor_b) if node_key == node_a else (minor_b, minor_a)
        result["dynamic_params"] = {
            constants.DDP_LOCAL_IP: ip_of(local), constants.DDP_REMOTE_IP: ip_of(remote),
            constants.DDP_PORT: port, constants.DDP_LOCAL_MINOR: lminor,
            constants.DDP_REMOTE_MINOR: rminor}
    return result


class ConfigDiskAnnotator:
    """Adds DRBD disks' per-node parameters from a ConfigWriter's nodes."""

    def __init__(self, cfg: Any) -> None:
        self._cfg = cfg

    def _Ip(self, node_uuid: str) -> str | None:
        node = self._cfg.GetNodeInfo(node_uuid)
        if node is None:
            return None
        return node.secondary_ip or node.primary_ip

    def __call__(self, node_key: str, value: Any) -> Any:
        if not _HasDrbdDisk(value):
            return value
        return AnnotateDrbdDisks(value, node_key, self._Ip)


class SsconfResolver:
    """Endpoints from the ssconf files, for code that runs without the
    configuration (job queue replication, bootstrap).

    Uses the per-node daemon endpoints when ssconf has them, else the
    primary IPs and the default port; nodes listed as offline are offline.
    """

    def __init__(self, ss: Any = None, default_port: int | None = None):
        self._ss = ss
        self._default_port = _PortOrDefault(default_port)

    def _Store(self) -> Any:
        if self._ss is None:
            from ganeti import ssconf
            return ssconf.SimpleStore()
        return self._ss

    def __call__(self, keys: Sequence[str], accept_offline: bool) -> list[NodeEndpoint]:
        ss = self._Store()
        endpoints: dict[str, tuple[str, int]] = {}
        try:
            endpoints = dict(ss.GetNodedEndpoints())
        except errors.ConfigurationError:
            pass
        try:
            ips = dict(line.split() for line in ss.GetNodePrimaryIPList())
        except errors.ConfigurationError:
            ips = {}
        try:
            offline = frozenset(ss.GetOfflineNodeList())
        except errors.ConfigurationError:
            offline = frozenset()
        result = []
        for key in keys:
            if key in endpoints:
                address, port = endpoints[key]
            else:
                address, port = ips.get(key, key), self._default_port
            result.append(NodeEndpoint(key, address, int(port),
                                       key in offline and not accept_offline))
        return result


class RpcRunner:
    """Runs the calls of :data:`ganeti.rpc.defs.CALLS` on node daemons.

    ``resolver`` maps node keys to endpoints; ``ssl_config`` defaults to the
    cluster's certificate files.
    """

    def __init__(self, resolver: Resolver | Callable[..., list[NodeEndpoint]],
                 ssl_config: RpcSslConfig | None = None,
                 connect_timeout: float = constants.RPC_CONNECT_TIMEOUT,
                 _process_fn: Callable[..., None] = ProcessRequests,
                 disk_annotator: Callable[[str, Any], Any] | None = None):
        self._resolver = resolver
        #: (node key, encoded object argument) -> the argument for that node
        self._disk_annotator = disk_annotator
        self._ssl_config = ssl_config
        self._connect_timeout = connect_timeout
        self._process_fn = _process_fn

    @classmethod
    def FromConfig(cls, cfg: Any, **kwargs: Any) -> RpcRunner:
        """A runner resolving node UUIDs through a ConfigWriter; DRBD disks
        in the arguments get each node's dynamic parameters."""
        kwargs.setdefault("disk_annotator", ConfigDiskAnnotator(cfg))
        return cls(ConfigResolver(cfg), **kwargs)

    @classmethod
    def FromSsconf(cls, **kwargs: Any) -> RpcRunner:
        """A runner resolving node names through ssconf."""
        return cls(SsconfResolver(), **kwargs)

    @classmethod
    def FromEndpoints(cls, endpoints: Mapping[str, Any],
                      offline: Iterable[str] = (), **kwargs: Any) -> RpcRunner:
        """A runner with fixed endpoints (see :class:`StaticResolver`)."""
        return cls(StaticResolver(endpoints, offline=offline), **kwargs)

    def _GetSslConfig(self) -> RpcSslConfig:
        if self._ssl_config is None:
            self._ssl_config = RpcSslConfig.FromDefaults()
        return self._ssl_config

    def Call(self, name: str, node_list: Sequence[str], args: Sequence[Any],
             read_timeout: float | None = None) -> dict[str, RpcResult]:
        """Run the call ``name`` on nodes; the generic form of ``call_*``."""
        try:
            call = defs.CALLS[name]
        except KeyError:
            raise errors.ProgrammerError(f"Unknown RPC call '{name}'") from None
        return self._Call(call, node_list, args, read_timeout)

    def _Call(self, call: defs.RpcCall, node_list: Sequence[str],
              args: Sequence[Any], read_timeout: float | None) -> dict[str, RpcResult]:
        if len(args) != len(call.args):
            raise errors.ProgrammerError(
                f"RPC call '{call.name}' takes {len(call.args)} argument(s)"
                f" ({', '.join(call.arg_names)}), {len(args)} given")
        if isinstance(node_list, str):
            raise errors.ProgrammerError(
                f"RPC call '{call.name}' needs a list of nodes, got a string")
        keys = list(dict.fromkeys(node_list))
        endpoints = self._resolver(keys, call.accept_offline)

        # Values shared by all nodes are encoded once (a file upload reads
        # and compresses the file once, not once per node)
        shared: dict[int, Any] = {}
        for idx, (argdef, value) in enumerate(zip(call.args, args)):
            if not isinstance(value, encoding.PerNode):
                shared[idx] = encoding.Encode(argdef.kind, value)

        results: dict[str, RpcResult] = {}
        requests: list[RpcRequest] = []
        for key, endpoint in zip(keys, endpoints):
            if endpoint.offline:
                results[key] = RpcResult(offline=True, call=call.name,
                                         node=endpoint.name)
                continue
            node_args = [value[key] if isinstance(value, encoding.PerNode) else value
                         for value in args]
            body = [shared[idx] if idx in shared
                    else encoding.Encode(argdef.kind, node_args[idx])
                    for idx, argdef in enumerate(call.args)]
            if self._disk_annotator is not None:
                body = [self._disk_annotator(key, arg) if argdef.kind in _OBJECT_KINDS
                        else arg for arg, argdef in zip(body, call.args)]
            timeout = read_timeout if read_timeout is not None \
                else call.GetTimeout(node_args)
            requests.append(RpcRequest(key=key, node=endpoint.name,
                                       address=endpoint.address, port=endpoint.port,
                                       procedure=call.name, body=serializer.DumpJsonBytes(body),
                                       read_timeout=timeout))

        self._process_fn(requests, self._GetSslConfig(),
                         connect_timeout=self._connect_timeout)
        for req in requests:
            results[req.key] = RequestToResult(req, serializer.LoadJson)
        if call.postproc:
            results = {key: call.postproc(res) for key, res in results.items()}
        # Results in the caller's order
        return {key: results[key] for key in keys}

    if TYPE_CHECKING:
        # The call_* methods are added below, from the table
        def __getattr__(self, name: str) -> Any: ...


def _MakeMethod(call: defs.RpcCall) -> Callable[..., Any]:
    arg_doc = "".join(f"\n    {arg.name}: {arg.doc or arg.kind.value}"
                      for arg in call.args)
    if call.single:
        def method(self: RpcRunner, node: str, *args: Any,
                   read_timeout: float | None = None) -> RpcResult:
            return self._Call(call, [node], args, read_timeout)[node]
        target = "node"
    else:
        def method(self: RpcRunner, node_list: Sequence[str], *args: Any,  # type: ignore[misc]
                   read_timeout: float | None = None) -> dict[str, RpcResult]:
            return self._Call(call, node_list, args, read_timeout)
        target = "node_list"
    method.__name__ = method.__qualname__ = f"call_{call.name}"
    method.__doc__ = (f"{call.doc}.\n\n({target}{''.join(', ' + a for a in call.arg_names)})"
                      f"{arg_doc}")
    return method


for _call in defs.CALLS.values():
    setattr(RpcRunner, f"call_{_call.name}", _MakeMethod(_call))
del _call
