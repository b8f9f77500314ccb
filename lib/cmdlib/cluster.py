"""Cluster-wide logical units: post-init, destroy, query, modify, redist.

Verification lives in :mod:`ganeti.cmdlib.cluster_verify`. The parameter
helpers here (:func:`ForceDictType`, :func:`CheckHvParams`, ...) are shared
with ``gnt-cluster init`` (:mod:`ganeti.bootstrap.cluster`), so that init
and modify accept and refuse the same values.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ganeti import constants, errors, ht, locking, objects, pathutils, uidpool, utils
from ganeti.cmdlib.base import FeedbackFn, NoHooksLU

_MAC_PREFIX_RE = re.compile(r"^[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$")
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True,
               "false": False, "no": False, "off": False, "0": False}


# --- Parameter checks shared with bootstrap ---------------------------------------------

def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _Cut(name: Any, limit: int = ht.MAX_SHOWN_STRING) -> str:
    """A name (or message) from the user's input, cut for a message."""
    text = str(name)
    if len(text) > limit:
        return text[:limit] + "..."
    return text


def _CutList(names: Iterable[Any], limit: int = 10) -> str:
    """Names for a message: each cut, at most ``limit`` of them."""
    names = list(names)
    text = ", ".join(_Cut(name) for name in names[:limit])
    return text + (", ..." if len(names) > limit else "")


def _ConvertValue(kind: str, key: str, value: Any, what: str) -> Any:
    if kind in ("string", "maybe-string"):
        if value is None and kind == "maybe-string":
            return None
        # Kernel command lines, paths and such: none is longer than a page
        if not isinstance(value, str) or len(value) > ht.MAX_TEXT_LEN:
            raise _Inval(f"{what} parameter '{key}' must be a string of at most"
                         f" {ht.MAX_TEXT_LEN} characters, got {ht.ShortRepr(value)}")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
        raise _Inval(f"{what} parameter '{key}' must be a boolean, got {ht.ShortRepr(value)}")
    if kind == "size":
        try:
            return utils.ParseUnit(value)
        except errors.GenericError as err:
            raise _Inval(f"{what} parameter '{key}': invalid size {ht.ShortRepr(value)}:"
                         f" {_Cut(err, ht.MAX_SHOWN_VALUE)}") \
                from None
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise _Inval(f"{what} parameter '{key}' must be a number, got {ht.ShortRepr(value)}")
        try:
            return int(value) if kind == "int" else float(value)
        except (TypeError, ValueError):
            expected = "an integer" if kind == "int" else "a number"
            raise _Inval(f"{what} parameter '{key}' must be {expected}, got"
                         f" {ht.ShortRepr(value)}") from None
    return value


def ForceDictType(params: Mapping[str, Any], key_types: Mapping[str, str],
                  what: str) -> dict[str, Any]:
    """Check the keys of ``params`` and convert their values to the types.

    @raise errors.OpPrereqError: naming unknown keys or bad values
    """
    if not isinstance(params, Mapping):
        raise _Inval(f"{what} parameters must be a dictionary, got"
                     f" {ht.ShortRepr(params)}")
    unknown = sorted(set(params) - set(key_types))
    if unknown:
        raise _Inval(f"Unknown {what} parameter(s): {_CutList(unknown)} (known:"
                     f" {', '.join(sorted(key_types))})")
    return {key: _ConvertValue(key_types[key], key, value, what)
            for key, value in params.items()}


def _TypeOfDefault(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string"


def CheckHvParams(hv_name: str, params: Mapping[str, Any],
                  base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check (and convert) hypervisor parameters for ``hv_name``.

    The hypervisor's syntax check needs a whole set (required parameters,
    parameters that depend on one another): when ``params`` are changes,
    ``base`` holds the values they change (e.g. the defaults), and the
    check runs on both together; only ``params`` are returned.
    """
    if hv_name not in constants.HYPER_TYPES:
        raise _Inval(f"Unknown hypervisor '{_Cut(hv_name)}' (known:"
                     f" {', '.join(sorted(constants.HYPER_TYPES))})")
    defaults = constants.HVC_DEFAULTS.get(hv_name, {})
    known: dict[str, str] = {key: _TypeOfDefault(value) for key, value in defaults.items()}
    hv_class = None
    try:
        from ganeti import hypervisor
        hv_class = hypervisor.GetHypervisorClass(hv_name)
        for key in hv_class.PARAMETERS:
            known.setdefault(key, _TypeOfDefault(defaults.get(key, "")))
    except (ImportError, errors.GenericError):
        hv_class = None
    result = ForceDictType(params, known, f"hypervisor '{hv_name}'")
    if hv_class is not None:
        try:
            hv_class.CheckParameterSyntax(result if base is None else {**base, **result})
        except errors.HypervisorError as err:
            raise _Inval(f"Invalid parameters for hypervisor '{hv_name}': {err}") from None
    return result


def CheckBeParams(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check backend parameters (``memory`` is taken as ``maxmem``)."""
    params = dict(params)
    if constants.BE_MEMORY in params:
        params.setdefault(constants.BE_MAXMEM, params[constants.BE_MEMORY])
        params.setdefault(constants.BE_MINMEM, params[constants.BE_MEMORY])
        del params[constants.BE_MEMORY]
    return ForceDictType(params, constants.BES_PARAMETER_TYPES, "backend")


def CheckNicParams(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check NIC parameters (keys and mode)."""
    result = ForceDictType(params, constants.NICS_PARAMETER_TYPES, "NIC")
    mode = result.get(constants.NIC_MODE)
    if mode is not None and mode not in constants.NIC_VALID_MODES:
        raise _Inval(f"Invalid NIC mode '{_Cut(mode)}' (valid:"
                     f" {', '.join(sorted(constants.NIC_VALID_MODES))})")
    return result


def CheckNdParams(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check node parameters."""
    return ForceDictType(params, constants.NDS_PARAMETER_TYPES, "node")


def CheckDiskParams(params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Check disk parameters per disk template."""
    result = {}
    for template, values in params.items():
        if template not in constants.DISK_TEMPLATES:
            raise _Inval(f"Unknown disk template '{_Cut(template)}' in disk"
                         " parameters")
        defaults = constants.DISK_DT_DEFAULTS.get(template, {})
        types = {key: _TypeOfDefault(value) for key, value in defaults.items()}
        result[template] = ForceDictType(values, types, f"disk template '{template}'")
    return result


def CheckIpolicy(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check the top-level keys of an instance policy."""
    unknown = sorted(set(params) - constants.IPOLICY_ALL_KEYS)
    if unknown:
        raise _Inval(f"Unknown instance policy parameter(s): {_CutList(unknown)}"
                     f" (known: {', '.join(sorted(constants.IPOLICY_ALL_KEYS))})")
    result = dict(params)
    for key in constants.IPOLICY_PARAMETERS & set(params):
        result[key] = _ConvertValue("float", key, params[key], "instance policy")
    if constants.IPOLICY_DTS in result:
        bad = sorted(set(result[constants.IPOLICY_DTS]) - constants.DISK_TEMPLATES)
        if bad:
            raise _Inval("Unknown disk template(s) in the instance policy:"
                         f" {_CutList(bad)}")
    return result


def CheckMacPrefix(prefix: str) -> str:
    """Check a MAC prefix ("aa:00:00")."""
    prefix = prefix.lower()
    if not _MAC_PREFIX_RE.match(prefix):
        raise _Inval(f"Invalid MAC prefix '{_Cut(prefix)}': expected three hex octets"
                     " such as aa:00:00")
    return prefix


def CheckHypervisorList(names: Iterable[str]) -> list[str]:
    """Check a list of hypervisor names (the first is the default)."""
    names = list(names)
    if not names:
        raise _Inval("At least one hypervisor must be enabled")
    bad = [n for n in names if n not in constants.HYPER_TYPES]
    if bad:
        raise _Inval(f"Unknown hypervisor(s): {_CutList(bad)} (known:"
                     f" {', '.join(sorted(constants.HYPER_TYPES))})")
    return list(dict.fromkeys(names))


def CheckDiskTemplateList(names: Iterable[str]) -> list[str]:
    """Check a list of disk templates (the first is the default)."""
    names = list(names)
    if not names:
        raise _Inval("At least one disk template must be enabled")
    bad = [n for n in names if n not in constants.DISK_TEMPLATES]
    if bad:
        raise _Inval(f"Unknown disk template(s): {_CutList(bad)} (known:"
                     f" {', '.join(sorted(constants.DISK_TEMPLATES))})")
    return list(dict.fromkeys(names))


def CheckStorageDir(path: str, what: str) -> str:
    """Check a storage directory: empty (unset) or an absolute path that,
    normalised, is no system directory (``ht.TStorageDir``); return it
    normalised."""
    if not path:
        return path
    if not os.path.isabs(path):
        raise _Inval(f"The {what} directory must be an absolute path, got"
                     f" {ht.ShortRepr(path)}")
    norm = os.path.normpath(path)
    if not ht.TStorageDir(norm):
        raise _Inval(f"Invalid {what} directory {ht.ShortRepr(path)}: expected a"
                     f" {ht.TStorageDir}")
    return norm


def CheckUidRanges(ranges: Iterable[Any]) -> list[tuple[int, int]]:
    """Check uid ranges [(low, high), ...]; return them normalised
    (:func:`ganeti.uidpool.CheckUidPool`)."""
    return uidpool.CheckUidPool(ranges)


def MergeParams(current: Mapping[str, Any] | None, changes: Mapping[str, Any]
                ) -> dict[str, Any]:
    """``current`` with ``changes`` applied; "default" removes a key."""
    result = dict(current or {})
    for key, value in changes.items():
        if value == constants.VALUE_DEFAULT:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def PromoteCandidates(lu: Any, feedback_fn: FeedbackFn | None = None) -> list[str]:
    """Promote nodes to master candidates up to the pool size; their names.

    The promoted nodes get the configuration at once (the save listener
    uploads config.data to every candidate).
    """
    cfg = lu.cfg
    now, wanted, _ = cfg.GetMasterCandidateStats()
    promoted: list[str] = []
    if now >= wanted:
        return promoted
    nodes = cfg.GetAllNodesInfo()
    for node in utils.NiceSort(nodes.values(), key=lambda n: n.name):
        if now >= wanted:
            break
        if node.master_candidate or node.offline or node.drained or not node.master_capable:
            continue
        node.master_candidate = True
        cfg.Update(node, feedback_fn)
        promoted.append(node.name)
        now += 1
    if promoted and feedback_fn:
        feedback_fn(f"Promoted nodes to master candidate role: {', '.join(promoted)}")
    return promoted


# --- LUs -------------------------------------------------------------------------------

class ClusterLU(NoHooksLU):
    """Base of the cluster LUs: the master context always has a config."""

    cfg: Any


class LUClusterPostInit(ClusterLU):
    """The last step of ``gnt-cluster init`` (runs the post-init hooks)."""

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> bool:
        return True


class LUClusterDestroy(ClusterLU):
    """Check that the cluster is empty and return the master's UUID.

    The rest (stopping daemons, removing files) is
    :func:`ganeti.bootstrap.cluster.FinalizeClusterDestroy`, run by the
    client once the job has succeeded.
    """

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def CheckPrereq(self) -> None:
        master = self.cfg.GetMasterNode()
        nodes = self.cfg.GetNodeList()
        if len(nodes) != 1 or nodes[0] != master:
            others = sorted(self.cfg.GetNodeName(n) for n in nodes if n != master)
            raise errors.OpPrereqError(
                f"There are still {len(others)} node(s) in this cluster"
                f" ({', '.join(others)}); remove them first", errors.ECODE_INVAL)
        instances = self.cfg.GetInstanceList()
        if instances:
            raise errors.OpPrereqError(
                f"There are still {len(instances)} instance(s) in this cluster",
                errors.ECODE_INVAL)

    def Exec(self, feedback_fn: FeedbackFn) -> str:
        return self.cfg.GetMasterNode()


class LUClusterQuery(ClusterLU):
    """The cluster's configuration and versions (QueryClusterInfo's answer)."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        from ganeti.luxi.handlers import ClusterInfo
        return ClusterInfo(self.cfg)


class LUClusterConfigQuery(ClusterLU):
    """Selected configuration values."""

    REQ_BGL = False
    FIELDS = ("cluster_name", "master_node", "drain_flag", "watcher_pause",
              "volume_group_name")

    def CheckArguments(self) -> None:
        unknown = [f for f in self.op.output_fields if f not in self.FIELDS]
        if unknown:
            raise _Inval(f"Unknown output field(s): {_CutList(unknown)} (known:"
                         f" {', '.join(self.FIELDS)})")

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> list[Any]:
        from ganeti import pathutils
        from ganeti.luxi.handlers import ReadWatcherPause
        values = {
            "cluster_name": self.cfg.GetClusterName(),
            "master_node": self.cfg.GetMasterNodeName(),
            "drain_flag": os.path.exists(pathutils.JOB_QUEUE_DRAIN_FILE),
            "watcher_pause": ReadWatcherPause(),
            "volume_group_name": self.cfg.GetVGName(),
        }
        return [values[f] for f in self.op.output_fields]


class LUClusterRedistConf(ClusterLU):
    """Push the configuration, ssconf and the ancillary files to all nodes."""

    def ExpandNames(self) -> None:
        self.needed_locks = {locking.LEVEL_NODE: locking.ALL_SET}
        self.share_locks[locking.LEVEL_NODE] = 1

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        from ganeti import config_sync
        # Saving distributes config.data and ssconf (the save listener)
        self.cfg.Update(self.cfg.GetClusterInfo(), feedback_fn)
        if self.rpc is None:
            return None
        failed = config_sync.DistributeConfig(self.cfg, self.rpc, feedback_fn)
        failed.update(config_sync.RedistributeAncillaryFiles(self.cfg, self.rpc,
                                                             feedback_fn))
        if failed:
            self.LogWarning("Redistribution failed for: %s",
                            "; ".join(f"{k}: {v}" for k, v in sorted(failed.items())))
        return None


class LUClusterRenewCrypto(ClusterLU):
    """Renew the nodes' client certificates and/or SSH keys.

    The cluster certificate, confd HMAC key, RAPI and SPICE certificates
    and cluster domain secret are renewed by ``gnt-cluster renew-crypto``
    itself (on the master, then copied), as in Ganeti; this opcode carries
    the parts that touch every node.

    Client certificates: each online node makes its own new ``client.pem``
    signed by its ``server.pem`` (RPC ``node_crypto_tokens``, so the keys
    never travel), the master last: its RPC client reads ``client.pem`` for
    every new connection, and its old certificate stays valid until then.
    The digests of the candidates' new certificates go to the cluster's
    ``candidate_certs``. SSH keys are renewed through the runner of
    :mod:`ganeti.ssh` (:mod:`ganeti.ssh_keys`); the cluster then records
    the new key type and size.
    """

    def ExpandNames(self) -> None:
        self.needed_locks = {}
        if self.op.node_certificates:
            # No node joins or leaves while its certificate is renewed
            self.needed_locks[locking.LEVEL_NODE] = locking.ALL_SET
            self.share_locks[locking.LEVEL_NODE] = 1

    def CheckPrereq(self) -> None:
        from ganeti import ssh_keys
        cluster = self.cfg.GetClusterInfo()
        self.ssh_key_type = self.op.ssh_key_type or cluster.ssh_key_type
        self.ssh_key_bits = ssh_keys.DetermineKeyBits(
            self.ssh_key_type, self.op.ssh_key_bits, cluster.ssh_key_type,
            cluster.ssh_key_bits)

    def _KeyNodes(self) -> list[Any]:
        from ganeti import ssh, ssh_keys
        master = self.cfg.GetMasterNode()
        result = []
        for node in self.cfg.GetAllNodesInfo().values():
            if node.offline:
                self.LogWarning("Node %s is offline: its SSH key is not renewed",
                                node.name)
                continue
            port = int(self.cfg.GetNdParams(node).get(constants.ND_SSH_PORT) or 22)
            result.append(ssh_keys.KeyNode(
                ssh.NodeTarget(node.name, node.primary_ip, port), node.uuid,
                node.master_candidate or node.uuid == master, node.uuid == master))
        return sorted(result, key=lambda n: n.target.name)

    def _GetRunner(self) -> Any:
        """How the master reaches the nodes (tests replace it)."""
        from ganeti import ssh
        return ssh.GetRunner(self.cfg.GetClusterName())

    def _RenewSshKeys(self, feedback_fn: FeedbackFn) -> None:
        from ganeti import ssh_keys
        cluster = self.cfg.GetClusterInfo()
        nodes = self._KeyNodes()
        runner = self._GetRunner()
        new_keys = ssh_keys.RenewKeys(runner, nodes, self.ssh_key_type,
                                      self.ssh_key_bits, cluster.ssh_key_type,
                                      ssh_keys.ReadPubKeyFile(), feedback_fn)
        for failure in ssh_keys.WritePubKeyFile(
                new_keys, runner, [n for n in nodes if n.master_candidate]):
            self.LogWarning("Cannot copy the public key file to %s", failure)
        cluster.ssh_key_type = self.ssh_key_type
        cluster.ssh_key_bits = self.ssh_key_bits
        self.cfg.Update(cluster, feedback_fn)

    def _CertNodes(self) -> list[Any]:
        """The online nodes in renewal order, the master last; offline ones
        are skipped with a warning."""
        master = self.cfg.GetMasterNode()
        nodes = []
        for node in utils.NiceSort(self.cfg.GetAllNodesInfo().values(),
                                   key=lambda n: n.name):
            if node.offline:
                self.LogWarning("Node %s is offline: its client certificate is not"
                                " renewed", node.name)
                continue
            nodes.append(node)
        return sorted(nodes, key=lambda n: n.uuid == master)

    def _RenewNodeCertificates(self, feedback_fn: FeedbackFn) -> None:
        master = self.cfg.GetMasterNode()
        request: list[tuple[str, str, dict[str, Any]]] = [
            (constants.CRYPTO_TYPE_SSL_DIGEST, constants.CRYPTO_ACTION_CREATE, {})]
        digests: dict[str, str] = {}
        failed: list[str] = []
        for node in self._CertNodes():
            feedback_fn(f"Renewing the client certificate of {node.name}")
            result = self.rpc.call_node_crypto_tokens(node.uuid, request)
            msg = result.fail_msg
            if not msg:
                try:
                    ((_, digest),) = result.payload
                    digests[node.uuid] = str(digest)
                except (TypeError, ValueError):
                    msg = f"invalid answer {result.payload!r}"
            if msg:
                self.LogWarning("Cannot renew the client certificate of node %s: %s",
                                node.name, msg)
                failed.append(node.name)
        cluster = self.cfg.GetClusterInfo()
        for uuid, digest in digests.items():
            node = self.cfg.GetNodeInfo(uuid)
            if node.master_candidate or uuid == master:
                cluster.candidate_certs[uuid] = digest
            else:
                cluster.candidate_certs.pop(uuid, None)
        self.cfg.Update(cluster, feedback_fn)
        if failed:
            raise errors.OpExecError(
                "Renewing the client certificate failed on node(s) "
                f"{', '.join(failed)}; the other nodes have new certificates")

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        if self.op.node_certificates:
            self._RenewNodeCertificates(feedback_fn)
        if self.op.renew_ssh_keys:
            if self.cfg.GetClusterInfo().modify_ssh_setup:
                feedback_fn("Renewing SSH keys")
                self._RenewSshKeys(feedback_fn)
            else:
                feedback_fn("Cannot renew SSH keys if the cluster is configured to not"
                            " modify the SSH setup.")
        return None


class LUClusterSetParams(ClusterLU):
    """Change cluster parameters (``gnt-cluster modify``).

    The syntax of each value is checked by the opcode's declaration;
    CheckPrereq checks what needs the configuration, before anything
    changes. Exec then stores the changed cluster object in one Update
    (none when nothing differs), and promotes nodes when the candidate
    pool grew.
    """

    #: opcode parameter -> cluster attribute, for values stored as given
    _SIMPLE = {
        "max_running_jobs": "max_running_jobs",
        "max_tracked_jobs": "max_tracked_jobs",
        "maintain_node_health": "maintain_node_health",
        "prealloc_wipe_disks": "prealloc_wipe_disks",
        "modify_etc_hosts": "modify_etc_hosts",
        "use_external_mip_script": "use_external_mip_script",
        "default_iallocator": "default_iallocator",
        "default_iallocator_params": "default_iallocator_params",
        "master_netdev": "master_netdev",
        "reserved_lvs": "reserved_lvs",
        "install_image": "install_image",
        "zeroing_image": "zeroing_image",
        "compression_tools": "compression_tools",
        "enabled_user_shutdown": "enabled_user_shutdown",
        "instance_communication_network": "instance_communication_network",
        "candidate_pool_size": "candidate_pool_size",
    }

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def CheckArguments(self) -> None:
        if self.op.uid_pool is not None and (self.op.add_uids or self.op.remove_uids):
            raise _Inval("uid_pool cannot be given together with add_uids or remove_uids")

    def CheckPrereq(self) -> None:
        op = self.op
        cluster = self.cfg.GetClusterInfo()
        new = cluster.Copy()
        self.new_cluster = new
        self.changes: list[str] = []

        for param, attr in self._SIMPLE.items():
            value = getattr(op, param, None)
            if value is not None:
                setattr(new, attr, copy.deepcopy(value))
                self.changes.append(param)
        if op.default_iallocator and op.default_iallocator != \
                constants.DEFAULT_IALLOCATOR_SHORTCUT and \
                pathutils.FindIallocator(op.default_iallocator) is None:
            raise _Inval(f"Invalid default iallocator script '{op.default_iallocator}'"
                         " specified: not found in the iallocator search path ("
                         + ", ".join(pathutils.IallocatorSearchPath()) + ")")
        if op.vg_name is not None:
            new.volume_group_name = op.vg_name or None
            self.changes.append("vg_name")
        if op.drbd_helper is not None:
            new.drbd_usermode_helper = op.drbd_helper or None
            self.changes.append("drbd_helper")
        if op.master_netmask is not None:
            limit = 128 if cluster.primary_ip_family == constants.IP6_ADDRESS_FAMILY else 32
            if op.master_netmask > limit:
                raise _Inval(f"Invalid master netmask {op.master_netmask}: must be at"
                             f" most {limit}")
            new.master_netmask = op.master_netmask
            self.changes.append("master_netmask")
        if op.mac_prefix is not None:
            new.mac_prefix = CheckMacPrefix(op.mac_prefix)
            self.changes.append("mac_prefix")
        if op.enabled_hypervisors is not None:
            new.enabled_hypervisors = CheckHypervisorList(op.enabled_hypervisors)
            for hv_name in new.enabled_hypervisors:
                new.hvparams.setdefault(
                    hv_name, dict(constants.HVC_DEFAULTS.get(hv_name, {})))
            self.changes.append("enabled_hypervisors")
        if op.hvparams:
            for hv_name, params in op.hvparams.items():
                checked = CheckHvParams(hv_name, params, base=objects.FillDict(
                    constants.HVC_DEFAULTS.get(hv_name, {}),
                    new.hvparams.get(hv_name) or {}))
                new.hvparams[hv_name] = MergeParams(new.hvparams.get(hv_name), checked)
            self.changes.append("hvparams")
        if op.os_hvp:
            for os_name, hvs in op.os_hvp.items():
                per_os = new.os_hvp.setdefault(os_name, {})
                for hv_name, params in hvs.items():
                    per_os[hv_name] = MergeParams(per_os.get(hv_name), CheckHvParams(
                        hv_name, params, base=objects.FillDict(
                            new.hvparams.get(hv_name) or constants.HVC_DEFAULTS.get(
                                hv_name, {}), per_os.get(hv_name) or {})))
            self.changes.append("os_hvp")
        for param in ("osparams", "osparams_private_cluster"):
            value = getattr(op, param)
            if value:
                target = getattr(new, param)
                for os_name, params in value.items():
                    merged = MergeParams(target.get(os_name), params)
                    if merged:
                        target[os_name] = merged
                    else:
                        target.pop(os_name, None)
                self.changes.append(param)
        if op.beparams:
            new.beparams[constants.PP_DEFAULT] = MergeParams(
                new.beparams.get(constants.PP_DEFAULT), CheckBeParams(op.beparams))
            self.changes.append("beparams")
        if op.nicparams:
            new.nicparams[constants.PP_DEFAULT] = MergeParams(
                new.nicparams.get(constants.PP_DEFAULT), CheckNicParams(op.nicparams))
            self.changes.append("nicparams")
        if op.ndparams:
            new.ndparams = MergeParams(new.ndparams, CheckNdParams(op.ndparams))
            self.changes.append("ndparams")
        if op.diskparams:
            for template, params in CheckDiskParams(op.diskparams).items():
                new.diskparams[template] = MergeParams(new.diskparams.get(template),
                                                       params)
            self.changes.append("diskparams")
        if op.ipolicy:
            new.ipolicy = MergeParams(new.ipolicy, CheckIpolicy(op.ipolicy))
            self.changes.append("ipolicy")
        if op.enabled_disk_templates is not None:
            new.enabled_disk_templates = CheckDiskTemplateList(op.enabled_disk_templates)
            self._CheckDiskTemplatesInUse(new.enabled_disk_templates)
            self.changes.append("enabled_disk_templates")
        for param, what in (("file_storage_dir", "file storage"),
                            ("shared_file_storage_dir", "shared file storage"),
                            ("gluster_storage_dir", "Gluster storage")):
            value = getattr(op, param)
            if value is not None:
                setattr(new, param, CheckStorageDir(value, what))
                self.changes.append(param)
        if op.uid_pool is not None:
            new.uid_pool = CheckUidRanges(op.uid_pool)
            self.changes.append("uid_pool")
        if op.add_uids:
            new.uid_pool = uidpool.AddToUidPool(new.uid_pool, op.add_uids)
            self.changes.append("add_uids")
        if op.remove_uids:
            new.uid_pool = uidpool.RemoveFromUidPool(new.uid_pool, op.remove_uids)
            self.changes.append("remove_uids")
        self.os_notes: list[str] = []
        for param in ("hidden_os", "blacklisted_os"):
            mods = getattr(op, param)
            if mods:
                setattr(new, param, self._ModifyOsList(param, getattr(new, param) or [],
                                                       mods))
                self.changes.append(param)
        for param in (constants.DATA_COLLECTORS_ENABLED_NAME,
                      constants.DATA_COLLECTORS_INTERVAL_NAME):
            value = getattr(op, param, None)
            if value:
                key = "active" if param == constants.DATA_COLLECTORS_ENABLED_NAME \
                    else "interval"
                unknown = sorted(set(value) - constants.DATA_COLLECTOR_NAMES)
                if unknown:
                    raise _Inval(f"Unknown data collector(s) in {param}:"
                                 f" {_CutList(unknown)}")
                if key == "interval" and any(v <= 0 for v in value.values()):
                    raise _Inval(f"Data collector intervals must be positive ({param})")
                collectors = new.data_collectors or {}
                for name, setting in value.items():
                    collectors.setdefault(name, {})[key] = setting
                new.data_collectors = collectors
                self.changes.append(param)
        from ganeti.cmdlib import resource_state
        if op.hv_state:
            new.hv_state_static = resource_state.MergeHvState(
                op.hv_state, new.hv_state_static)
            self.changes.append("hv_state")
        if op.disk_state:
            new.disk_state_static = resource_state.MergeDiskState(
                op.disk_state, new.disk_state_static)
            self.changes.append("disk_state")

    def _CheckDiskTemplatesInUse(self, enabled: list[str]) -> None:
        in_use = set()
        for inst_uuid in self.cfg.GetInstanceList():
            in_use.add(self.cfg.GetInstanceDiskTemplate(inst_uuid))
        missing = sorted(in_use - set(enabled) - {constants.DT_DISKLESS})
        if missing:
            raise errors.OpPrereqError(
                f"Cannot disable disk template(s) {', '.join(missing)}: instances"
                " use them", errors.ECODE_STATE)

    def _ModifyOsList(self, param: str, current: list[str],
                      mods: list[Any]) -> list[str]:
        result = list(current)
        for action, os_name in mods:
            if action == constants.DDM_ADD:
                if os_name in result:
                    self.os_notes.append(f"OS {os_name} already in {param}, ignoring")
                else:
                    result.append(os_name)
            elif action == constants.DDM_REMOVE:
                if os_name in result:
                    result.remove(os_name)
                else:
                    self.os_notes.append(f"OS {os_name} not found in {param}, ignoring")
            else:
                raise _Inval(f"Invalid {param} modification '{action}' (use"
                             f" {constants.DDM_ADD} or {constants.DDM_REMOVE})")
        return result

    def Exec(self, feedback_fn: FeedbackFn) -> None:
        for note in self.os_notes:
            feedback_fn(note)
        if not self.changes:
            feedback_fn("No changes requested")
            return None
        # Values equal to the current ones change nothing: the configuration
        # (and its serial number) stays as it is, as for an empty request
        if self.new_cluster.ToDict() == self.cfg.GetClusterInfo().ToDict():
            feedback_fn("Nothing to change: the given values are the current ones")
        else:
            self.cfg.Update(self.new_cluster, feedback_fn)
        if "candidate_pool_size" in self.changes:
            PromoteCandidates(self, feedback_fn)
        return None

