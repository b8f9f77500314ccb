"""The confd query processor: from a request datagram to a signed answer.

:class:`ConfigSnapshot` is an immutable view of one configuration with the
lookup tables the queries need, built once per (re)load.
:class:`ConfdProcessor` holds the current snapshot and HMAC key and turns
a datagram into the answer datagram, or into nothing: datagrams without
the magic, too large, not JSON, badly signed or with a time outside the
allowed window are dropped without an answer, as are requests without a
response salt. Everything else is answered, errors included.

Answers follow Ganeti's confd, type by type (``CONFD_REQ_*``):

============================  ==========================  =====================
type                          query                       answer (status OK)
============================  ==========================  =====================
PING                          --                          configuration version
NODE_ROLE_BYNAME              node name (or UUID)         ``CONFD_NODE_ROLE_*``
NODE_PIP_BY_INSTANCE_IP       {"1": ip, "0"?: link}       the primary node's IP
                              {"2": [ip, ...], "0"?}      [[status, answer], ...]
CLUSTER_MASTER                --                          the master's name
                              {"3": [field, ...]}         [value, ...] by field
NODE_PIP_LIST                 --                          every node's primary IP
MC_PIP_LIST                   --                          the candidates' IPs
INSTANCES_IPS_LIST            link (default: cluster's)   the instance IPs on it
NODE_DRBD                     node name                   [[node, minor, instance,
                                                          "disk/N", role, peer]]
NODE_INSTANCES                node name                   [[primary], [secondary]]
INSTANCE_DISKS                instance name (or UUID)     [disk dict, ...]
CONFIG_QUERY                  "/path/in/config"           the value there
DATA_COLLECTORS               --                          the cluster's settings
============================  ==========================  =====================

Errors answer ``CONFD_REPL_STATUS_ERROR`` with serial 0: a malformed query
gets ``CONFD_ERROR_ARGUMENT``, an unknown instance IP ``CONFD_ERROR_UNKNOWN_ENTRY``,
an unknown node or instance (and an unknown request type, a wrong protocol
version) a message. Dict query keys may also be spelt "link", "ip",
"iplist" and "fields" (an extension), and CLUSTER_MASTER knows the
extension field ``CONFD_REQFIELD_NETDEV``. Answers carry the serial number
of the configuration (``serial_no`` of config.data).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from ganeti import constants, objects, utils
from ganeti.confd import protocol

__all__ = ["ConfdProcessor", "ConfigSnapshot", "HANDLERS", "LoadSnapshot"]

_OK = constants.CONFD_REPL_STATUS_OK
_ERROR = constants.CONFD_REPL_STATUS_ERROR

Answer = tuple[int, Any, int]

#: Standard error answers (Ganeti's)
UNKNOWN_ENTRY: Answer = (_ERROR, constants.CONFD_ERROR_UNKNOWN_ENTRY, 0)
ARGUMENT_ERROR: Answer = (_ERROR, constants.CONFD_ERROR_ARGUMENT, 0)

#: Largest number of answer texts remembered per snapshot
_CACHE_SIZE = 4096

_MAGIC = constants.CONFD_MAGIC_FOURCC
_MAGIC_LEN = len(_MAGIC)
_MAX_SIZE = constants.MAX_UDP_DATA_SIZE
_MAX_SKEW = constants.CONFD_MAX_CLOCK_SKEW
_PROTOCOL = constants.CONFD_PROTOCOL_VERSION
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"),
                           allow_nan=False, ensure_ascii=True).encode
_DECODE = json.JSONDecoder().decode
_SHA1 = hashlib.sha1

# Dict query keys: Ganeti's and their readable aliases
_QUERY_KEYS = {
    "link": (constants.CONFD_REQQ_LINK, "link"),
    "ip": (constants.CONFD_REQQ_IP, "ip"),
    "iplist": (constants.CONFD_REQQ_IPLIST, "iplist"),
    "fields": (constants.CONFD_REQQ_FIELDS, "fields"),
}


def _Error(message: str) -> Answer:
    return (_ERROR, message, 0)


def _QueryValue(query: dict[str, Any], what: str) -> Any:
    for key in _QUERY_KEYS[what]:
        if key in query:
            return query[key]
    return None


class ConfigSnapshot:
    """One configuration, with lookup tables, as the queries need it.

    ``data`` None stands for "no configuration loaded" (``error`` says
    why): every query then answers that error.
    """

    def __init__(self, data: objects.ConfigData | None,
                 error: str | None = None):
        self.data = data
        self.error = error
        self.cache: dict[tuple[int, str | None], str] = {}
        self._config_dict: dict[str, Any] | None = None
        if data is None:
            self.serial = 0
            return
        cluster = data.cluster
        self.serial = data.serial_no or 0
        self.version = data.version
        self.nodes: dict[str, objects.Node] = {}
        for node in data.nodes.values():
            self.nodes[node.uuid] = node
        for node in data.nodes.values():
            self.nodes[node.name] = node
        master = data.nodes.get(cluster.master_node)
        self.master = master
        self.master_name = master.name if master else cluster.master_node
        self.roles = {}
        for key, node in self.nodes.items():
            self.roles[key] = self._Role(node)
        self.instances: dict[str, objects.Instance] = {}
        for inst in data.instances.values():
            self.instances[inst.uuid] = inst
        for inst in data.instances.values():
            self.instances[inst.name] = inst
        default_nic = (cluster.nicparams or {}).get(constants.PP_DEFAULT, {})
        self.default_link = default_nic.get(constants.NIC_LINK, "")
        # link -> instance IP -> instance name
        self.link_ips: dict[str, dict[str, str]] = {}
        for inst in utils.NiceSort(data.instances.values(),
                                   key=lambda i: i.name):
            for nic in inst.nics or []:
                if not nic.ip:
                    continue
                params = cluster.SimpleFillNIC(nic.nicparams or {})
                link = params.get(constants.NIC_LINK, "")
                self.link_ips.setdefault(link, {})[nic.ip] = inst.name
        self.sorted_nodes = utils.NiceSort(data.nodes.values(),
                                           key=lambda n: n.name)

    def _Role(self, node: objects.Node) -> int:
        if node is self.master:
            return constants.CONFD_NODE_ROLE_MASTER
        if node.drained:
            return constants.CONFD_NODE_ROLE_DRAINED
        if node.offline:
            return constants.CONFD_NODE_ROLE_OFFLINE
        if node.master_candidate:
            return constants.CONFD_NODE_ROLE_CANDIDATE
        return constants.CONFD_NODE_ROLE_REGULAR

    @property
    def config_dict(self) -> dict[str, Any]:
        """The configuration as a dict (built on first use)."""
        if self._config_dict is None:
            assert self.data is not None
            self._config_dict = self.data.ToDict()
        return self._config_dict

    def NodeName(self, uuid: str) -> str:
        """A node's name from its UUID (the UUID itself if unknown)."""
        node = self.nodes.get(uuid)
        return node.name if node else uuid

    def InstanceDisks(self, inst: objects.Instance) -> list[objects.Disk]:
        """The disks of an instance, in order."""
        assert self.data is not None
        return [self.data.disks[uuid] for uuid in inst.disks or []
                if uuid in self.data.disks]


# --- Query handlers ------------------------------------------------------------------
# Each takes the snapshot and the query and returns (status, answer, serial)

def _Ping(snap: ConfigSnapshot, _query: Any) -> Answer:
    return (_OK, snap.version, snap.serial)


def _NodeRoleByName(snap: ConfigSnapshot, query: Any) -> Answer:
    if not isinstance(query, str):
        return _Error(f"Invalid query {query!r:.80}: expected a node name")
    role = snap.roles.get(query)
    if role is None:
        return _Error(f"Node '{query:.200}' not found in the configuration")
    return (_OK, role, snap.serial)


def _PipByIp(snap: ConfigSnapshot, link: str, ip: Any) -> Answer:
    if not isinstance(ip, str):
        return UNKNOWN_ENTRY
    inst_name = snap.link_ips.get(link, {}).get(ip)
    if inst_name is None:
        return UNKNOWN_ENTRY
    inst = snap.instances.get(inst_name)
    node = snap.nodes.get(inst.primary_node) if inst else None
    if node is None:
        return UNKNOWN_ENTRY
    return (_OK, node.primary_ip, snap.serial)


def _NodePipByInstanceIp(snap: ConfigSnapshot, query: Any) -> Answer:
    if not isinstance(query, dict):
        return ARGUMENT_ERROR
    link = _QueryValue(query, "link")
    if link is None:
        link = snap.default_link
    elif not isinstance(link, str):
        return ARGUMENT_ERROR
    ip = _QueryValue(query, "ip")
    if ip is not None:
        return _PipByIp(snap, link, ip)
    iplist = _QueryValue(query, "iplist")
    if iplist is None:
        iplist = []
    if not isinstance(iplist, list):
        return ARGUMENT_ERROR
    answers = []
    for one_ip in iplist:
        status, answer, _ = _PipByIp(snap, link, one_ip)
        answers.append([status, answer])
    return (_OK, answers, snap.serial)


def _ClusterMaster(snap: ConfigSnapshot, query: Any) -> Answer:
    assert snap.data is not None
    if query is None or query == "":
        return (_OK, snap.master_name, snap.serial)
    if not isinstance(query, dict):
        return ARGUMENT_ERROR
    fields = _QueryValue(query, "fields")
    if fields is None:
        fields = []
    if not isinstance(fields, list):
        return ARGUMENT_ERROR
    cluster = snap.data.cluster
    master_pip = snap.master.primary_ip if snap.master else None
    values: list[Any] = []
    for field in fields:
        if isinstance(field, bool):
            return ARGUMENT_ERROR
        field = str(field) if isinstance(field, int) else field
        if field == constants.CONFD_REQFIELD_NAME:
            values.append(snap.master_name)
        elif field == constants.CONFD_REQFIELD_IP:
            values.append(cluster.master_ip)
        elif field == constants.CONFD_REQFIELD_MNODE_PIP:
            values.append(master_pip)
        elif field == constants.CONFD_REQFIELD_NETDEV:
            values.append(cluster.master_netdev)
        else:
            return ARGUMENT_ERROR
    return (_OK, values, snap.serial)


def _NodePipList(snap: ConfigSnapshot, _query: Any) -> Answer:
    return (_OK, [n.primary_ip for n in snap.sorted_nodes], snap.serial)


def _McPipList(snap: ConfigSnapshot, _query: Any) -> Answer:
    return (_OK, [n.primary_ip for n in snap.sorted_nodes
                  if n.master_candidate], snap.serial)


def _InstancesIpsList(snap: ConfigSnapshot, query: Any) -> Answer:
    if query is None or query == "":
        link = snap.default_link
    elif isinstance(query, str):
        link = query
    else:
        return _Error(f"Invalid query {query!r:.80}: expected a link name")
    return (_OK, sorted(snap.link_ips.get(link, {})), snap.serial)


def _DrbdMinors(disk: objects.Disk, node_uuid: str
                ) -> list[tuple[int, str]]:
    """(minor, peer node UUID) of a disk tree's DRBD devices on a node."""
    result = []
    if disk.dev_type == constants.DT_DRBD8 and disk.logical_id and \
            len(disk.logical_id) == 6:
        node_a, node_b, _, minor_a, minor_b, _ = disk.logical_id
        if node_a == node_uuid:
            result.append((minor_a, node_b))
        elif node_b == node_uuid:
            result.append((minor_b, node_a))
    for child in disk.children or []:
        result.extend(_DrbdMinors(child, node_uuid))
    return result


def _LookupNode(snap: ConfigSnapshot, query: Any
                ) -> tuple[objects.Node | None, Answer | None]:
    if not isinstance(query, str):
        return None, _Error(f"Invalid query {query!r:.80}: expected a node"
                            f" name")
    node = snap.nodes.get(query)
    if node is None:
        return None, _Error(f"Node '{query:.200}' not found in the"
                            f" configuration")
    return node, None


def _NodeDrbd(snap: ConfigSnapshot, query: Any) -> Answer:
    node, error = _LookupNode(snap, query)
    if node is None:
        assert error is not None
        return error
    assert snap.data is not None
    minors = []
    for inst in utils.NiceSort(snap.data.instances.values(),
                               key=lambda i: i.name):
        role = "primary" if inst.primary_node == node.uuid else "secondary"
        for idx, disk in enumerate(snap.InstanceDisks(inst)):
            for minor, peer in _DrbdMinors(disk, node.uuid):
                minors.append([node.name, minor, inst.name, f"disk/{idx}",
                               role, snap.NodeName(peer)])
    return (_OK, minors, snap.serial)


def _NodeInstances(snap: ConfigSnapshot, query: Any) -> Answer:
    node, error = _LookupNode(snap, query)
    if node is None:
        assert error is not None
        return error
    assert snap.data is not None
    primary, secondary = [], []
    for inst in utils.NiceSort(snap.data.instances.values(),
                               key=lambda i: i.name):
        if inst.primary_node == node.uuid:
            primary.append(inst.name)
            continue
        for disk in snap.InstanceDisks(inst):
            if node.uuid in disk.ComputeNodes(inst.primary_node):
                secondary.append(inst.name)
                break
    return (_OK, [primary, secondary], snap.serial)


def _InstanceDisks(snap: ConfigSnapshot, query: Any) -> Answer:
    if not isinstance(query, str):
        return _Error(f"Invalid query {query!r:.80}: expected an instance"
                      f" name")
    inst = snap.instances.get(query)
    if inst is None:
        return _Error(f"Instance '{query:.200}' not found in the"
                      f" configuration")
    return (_OK, [disk.ToDict() for disk in snap.InstanceDisks(inst)],
            snap.serial)


def _ConfigQuery(snap: ConfigSnapshot, query: Any) -> Answer:
    if not isinstance(query, str):
        return _Error(f"Invalid query {query!r:.80}: expected a path")
    value: Any = snap.config_dict
    for part in query.strip("/").split("/"):
        if not part:
            continue
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and \
                int(part) < len(value):
            value = value[int(part)]
        else:
            return ARGUMENT_ERROR
    return (_OK, value, snap.serial)


def _DataCollectors(snap: ConfigSnapshot, _query: Any) -> Answer:
    assert snap.data is not None
    return (_OK, snap.data.cluster.data_collectors or {}, snap.serial)


HANDLERS: dict[int, Callable[[ConfigSnapshot, Any], Answer]] = {
    constants.CONFD_REQ_PING: _Ping,
    constants.CONFD_REQ_NODE_ROLE_BYNAME: _NodeRoleByName,
    constants.CONFD_REQ_NODE_PIP_BY_INSTANCE_IP: _NodePipByInstanceIp,
    constants.CONFD_REQ_CLUSTER_MASTER: _ClusterMaster,
    constants.CONFD_REQ_NODE_PIP_LIST: _NodePipList,
    constants.CONFD_REQ_MC_PIP_LIST: _McPipList,
    constants.CONFD_REQ_INSTANCES_IPS_LIST: _InstancesIpsList,
    constants.CONFD_REQ_NODE_DRBD: _NodeDrbd,
    constants.CONFD_REQ_NODE_INSTANCES: _NodeInstances,
    constants.CONFD_REQ_INSTANCE_DISKS: _InstanceDisks,
    constants.CONFD_REQ_CONFIG_QUERY: _ConfigQuery,
    constants.CONFD_REQ_DATA_COLLECTORS: _DataCollectors,
}


def _EncodeReply(status: int, answer: Any, serial: int) -> str:
    return _ENCODE({"answer": answer, "protocol": _PROTOCOL,
                    "serial": serial, "status": status}) + "\n"


class ConfdProcessor:
    """Answers confd datagrams from the current snapshot and key.

    ``stats`` counts the datagrams: "answered", and the dropped ones by
    reason ("size", "magic", "format", "signature", "time", "rsalt",
    "nokey").

    ``before_answer``, if set, is called (without arguments) for every
    datagram that is going to be answered, once it passed every check
    (signature, time, rsalt) and before the snapshot is read: the daemon
    uses it to load a changed configuration first, and only signed, fresh
    requests can make it do so. An exception from it is logged and the
    query answered from the snapshot in use.
    """

    def __init__(self, snapshot: ConfigSnapshot | None = None,
                 hmac_key: bytes | None = None,
                 logger: logging.Logger | None = None,
                 max_skew: float = _MAX_SKEW,
                 before_answer: Callable[[], None] | None = None):
        self.snapshot = snapshot or ConfigSnapshot(
            None, "Configuration not yet loaded")
        self.hmac_key = hmac_key
        self.max_skew = max_skew
        self.before_answer = before_answer
        self.log = logger or logging.getLogger("ganeti.confd")
        self.stats: Counter[str] = Counter()

    def SetSnapshot(self, snapshot: ConfigSnapshot) -> None:
        """Answer from ``snapshot`` from now on."""
        self.snapshot = snapshot

    def SetKey(self, hmac_key: bytes) -> None:
        """Verify and sign with ``hmac_key`` from now on."""
        self.hmac_key = hmac_key

    def _Drop(self, reason: str, detail: str, peer: Any) -> None:
        self.stats[reason] += 1
        self.log.debug("Dropping datagram from %s (%s): %s", peer, reason,
                       detail)

    def Answer(self, rtype: Any, query: Any, protocol_version: Any = _PROTOCOL,
               snapshot: ConfigSnapshot | None = None) -> Answer:
        """(status, answer, serial) for one query (never raises)."""
        snap = snapshot or self.snapshot
        if protocol_version != _PROTOCOL:
            return _Error(f"Unsupported confd protocol version"
                          f" {protocol_version!r:.20} (this daemon speaks"
                          f" {_PROTOCOL})")
        handler = HANDLERS.get(rtype) if isinstance(rtype, int) and \
            not isinstance(rtype, bool) else None
        if handler is None:
            return _Error(f"Unknown confd request type {rtype!r:.20}")
        if snap.data is None:
            return _Error(snap.error or "No configuration loaded")
        try:
            return handler(snap, query)
        except Exception as err:  # a bug must not take the daemon down
            self.log.exception("Error answering confd request type %s,"
                               " query %.200r", rtype, query)
            return (_ERROR, f"Internal error: {err}", 0)

    def AnswerText(self, rtype: Any, query: Any,
                   protocol_version: Any = _PROTOCOL) -> str:
        """The JSON text of the reply to a query (cached per snapshot)."""
        snap = self.snapshot
        ckey = None
        if (query is None or type(query) is str) and type(rtype) is int and \
                protocol_version == _PROTOCOL:
            ckey = (rtype, query)
            text = snap.cache.get(ckey)
            if text is not None:
                return text
        status, answer, serial = self.Answer(rtype, query, protocol_version,
                                             snap)
        text = _EncodeReply(status, answer, serial)
        if ckey is not None:
            if len(snap.cache) >= _CACHE_SIZE:
                snap.cache.clear()
            snap.cache[ckey] = text
        return text

    def HandleDatagram(self, payload: bytes, peer: Any = None,
                       now: float | None = None) -> bytes | None:
        """The answer datagram to ``payload``, or None to drop it."""
        key = self.hmac_key
        if key is None:
            self._Drop("nokey", "no HMAC key loaded", peer)
            return None
        if len(payload) > _MAX_SIZE:
            self._Drop("size", f"{len(payload)} bytes", peer)
            return None
        if payload[:_MAGIC_LEN] != _MAGIC:
            self._Drop("magic", repr(payload[:8]), peer)
            return None
        try:
            outer = _DECODE(payload[_MAGIC_LEN:].decode("utf-8"))
            msg = outer["msg"]
            salt = outer["salt"]
            digest = outer["hmac"]
        except Exception as err:  # any malformed input
            self._Drop("format", str(err)[:100], peer)
            return None
        if type(msg) is not str or type(salt) is not str or \
                type(digest) is not str:
            self._Drop("format", "msg, salt or hmac not a string", peer)
            return None
        try:
            expected = hmac.new(key, (salt + msg).encode("utf-8"),
                                _SHA1).hexdigest()
            good = hmac.compare_digest(expected, digest.lower())
        except (TypeError, UnicodeEncodeError):
            good = False
        if not good:
            self._Drop("signature", "invalid HMAC", peer)
            return None
        try:
            protocol.CheckTimestamp(salt, now=now, max_skew=self.max_skew)
        except protocol.ConfdRequestError as err:
            self._Drop("time", str(err), peer)
            return None
        try:
            request = _DECODE(msg)
            rsalt = request["rsalt"]
        except Exception as err:
            self._Drop("format", f"request: {str(err)[:100]}", peer)
            return None
        if type(rsalt) is not str or not rsalt:
            self._Drop("rsalt", "missing or invalid rsalt", peer)
            return None
        if self.before_answer is not None:
            try:
                self.before_answer()
            except Exception:  # answer from the snapshot in use
                self.log.exception("Error preparing the answer to %s", peer)
        text = self.AnswerText(request.get("type"), request.get("query"),
                               request.get("protocol"))
        reply = self._Sign(key, rsalt, text)
        if len(reply) > _MAX_SIZE:
            text = _EncodeReply(_ERROR, constants.CONFD_ERROR_INTERNAL, 0)
            reply = self._Sign(key, rsalt, text)
        self.stats["answered"] += 1
        return reply

    @staticmethod
    def _Sign(key: bytes, rsalt: str, text: str) -> bytes:
        digest = hmac.new(key, (rsalt + text).encode("utf-8"),
                          _SHA1).hexdigest()
        return _MAGIC + _ENCODE({"hmac": digest, "msg": text,
                                 "salt": rsalt}).encode("ascii")


def LoadSnapshot(cfg_file: str) -> ConfigSnapshot:
    """Read a configuration file (read-only) into a snapshot.

    @raise errors.ConfigurationError: naming the file and the problem
    """
    from ganeti import config  # only the daemon needs the loader
    return ConfigSnapshot(config.LoadConfigData(cfg_file))
