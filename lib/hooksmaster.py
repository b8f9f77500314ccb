"""Running an operation's hooks on the nodes: :class:`HooksMaster`.

An LU with ``HPATH`` set has hooks: ``BuildHooksEnv()`` gives its own
variables (without prefix) and ``BuildHooksNodes()`` the node UUIDs that
run the pre and the post hooks. The processor builds the hooks master after
``CheckPrereq`` and runs the pre phase before ``Exec`` and the post phase
after it (see :mod:`ganeti.mcpu`).

Each script gets a clean environment: ``PATH``, the common variables
(``GANETI_HOOKS_VERSION``, ``GANETI_HOOKS_PHASE``, ``GANETI_HOOKS_PATH``,
``GANETI_OP_CODE``, ``GANETI_OBJECT_TYPE``, ``GANETI_DATA_DIR``,
``GANETI_CLUSTER``, ``GANETI_MASTER``) and the LU's variables prefixed with
``GANETI_``; in the post phase the LU's variables are computed again after
``Exec`` and added with the prefix ``GANETI_POST_``, next to the pre-phase
ones. A failing pre hook aborts the operation with ``errors.HooksAbort``
listing (node, script, output); a failing post hook is a warning in the job
log. Unreachable nodes never count as a hook failure (they are reported as
warnings); offline nodes are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ganeti import constants, errors, pathutils

#: run_fn(node_uuids, hpath, phase, env) -> {node_uuid: RpcResult}
RunFn = Callable[[list[str], str, str, dict[str, str]], dict[str, Any]]

_PHASES = (constants.HOOKS_PHASE_PRE, constants.HOOKS_PHASE_POST)


def _EnvValue(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return " ".join(str(item) for item in value)
    return str(value)


def PrefixEnv(prefix: str, env: dict[str, Any] | None) -> dict[str, str]:
    """``env`` with every key prefixed and every value a string."""
    result = {}
    for key, value in (env or {}).items():
        if key.upper().startswith("GANETI_"):
            raise errors.ProgrammerError(
                f"Hooks variable {key!r} must be given without the GANETI_ prefix")
        result[f"{prefix}{key}"] = _EnvValue(value)
    return result


class HooksMaster:
    """Runs the pre and post hooks of one operation.

    ``nodes`` is ``(pre_node_uuids, post_node_uuids)``; ``name_fn`` turns a
    node UUID into its name (for messages and results); ``log_fn`` reports a
    warning to the job log.
    """

    def __init__(self, opcode: str, hooks_path: str | None,
                 nodes: tuple[Iterable[str], Iterable[str]], run_fn: RunFn,
                 build_env_fn: Callable[[], dict[str, Any]],
                 prepare_post_nodes_fn: Callable[[list[str]], list[str]] | None,
                 log_fn: Callable[[str], None], htype: str | None = None,
                 cluster_name: str | None = None, master_name: str | None = None,
                 master_uuid: str | None = None,
                 name_fn: Callable[[str], str] | None = None) -> None:
        self.opcode = opcode
        self.hooks_path = hooks_path
        self.pre_nodes = list(nodes[0] or [])
        self.post_nodes = list(nodes[1] or [])
        self.run_fn = run_fn
        self.build_env_fn = build_env_fn
        self.prepare_post_nodes_fn = prepare_post_nodes_fn
        self.log_fn = log_fn
        self.htype = htype
        self.cluster_name = cluster_name
        self.master_name = master_name
        self.master_uuid = master_uuid
        self.name_fn = name_fn or (lambda uuid: uuid)
        self.pre_env = self._BuildEnv(constants.HOOKS_PHASE_PRE)

    @classmethod
    def BuildFromLu(cls, lu: Any) -> HooksMaster:
        """The hooks master of ``lu`` (call after its CheckPrereq)."""
        if lu.HPATH is None:
            # No hooks: nothing to compute, and the configuration is not read
            return cls(lu.op.OP_ID, None, ([], []), _NoRun, dict, None,
                       lu.LogWarning, lu.HTYPE)
        hooks_nodes = lu.BuildHooksNodes()
        if hooks_nodes is None or len(hooks_nodes) != 2:
            raise errors.ProgrammerError(
                f"{lu.__class__.__name__}.BuildHooksNodes must return a pair"
                " of node lists")
        nodes = (list(hooks_nodes[0] or []), list(hooks_nodes[1] or []))
        cfg = lu.cfg
        cluster_name = master_name = master_uuid = None
        name_fn = None
        if cfg is not None:
            cluster_name = cfg.GetClusterName()
            master_uuid = cfg.GetMasterNode()
            master_name = cfg.GetMasterNodeName()
            name_fn = _NodeNameFn(cfg)

        def _Run(node_uuids: list[str], hpath: str, phase: str,
                 env: dict[str, str]) -> dict[str, Any]:
            if lu.rpc is None:
                raise errors.HooksFailure("No RPC runner to run hooks with")
            return lu.rpc.call_hooks_runner(node_uuids, hpath, phase, env)

        return cls(lu.op.OP_ID, lu.HPATH, nodes, _Run, lu.BuildHooksEnv,
                   lu.PreparePostHookNodes, lu.LogWarning, lu.HTYPE,
                   cluster_name, master_name, master_uuid, name_fn)

    # --- environment -------------------------------------------------------------------

    def _BuildEnv(self, phase: str) -> dict[str, str]:
        """The LU's variables for ``phase``, prefixed (and merged with the
        pre-phase ones in the post phase)."""
        if self.hooks_path is None:
            return {}
        prefix = "GANETI_" if phase == constants.HOOKS_PHASE_PRE else "GANETI_POST_"
        env = PrefixEnv(prefix, self.build_env_fn())
        if phase == constants.HOOKS_PHASE_POST:
            env.update(self.pre_env)
        return env

    def _CommonEnv(self, phase: str, hpath: str) -> dict[str, str]:
        env = {
            "PATH": constants.HOOKS_PATH,
            "GANETI_HOOKS_VERSION": str(constants.HOOKS_VERSION),
            "GANETI_OP_CODE": self.opcode,
            "GANETI_DATA_DIR": pathutils.DATA_DIR,
            "GANETI_HOOKS_PHASE": phase,
            "GANETI_HOOKS_PATH": hpath,
        }
        if self.htype:
            env["GANETI_OBJECT_TYPE"] = self.htype
        if self.cluster_name is not None:
            env["GANETI_CLUSTER"] = self.cluster_name
        if self.master_name is not None:
            env["GANETI_MASTER"] = self.master_name
        return env

    def BuildEnv(self, phase: str, hpath: str | None = None,
                 phase_env: dict[str, str] | None = None) -> dict[str, str]:
        """The whole environment the scripts of ``phase`` get."""
        env = self._CommonEnv(phase, hpath or self.hooks_path or "")
        for key, value in (phase_env or {}).items():
            if key in env:
                raise errors.ProgrammerError(
                    f"Hooks variable {key} clashes with a common variable")
            env[key] = value
        return env

    # --- running -----------------------------------------------------------------------

    def _RunWrapper(self, node_uuids: list[str], hpath: str, phase: str,
                    phase_env: dict[str, str]) -> dict[str, Any]:
        if not node_uuids:
            return {}
        env = self.BuildEnv(phase, hpath, phase_env)
        # The same node may be named twice (master and primary, say)
        unique = list(dict.fromkeys(node_uuids))
        results = self.run_fn(unique, hpath, phase, env)
        return {self.name_fn(uuid): results[uuid] for uuid in unique
                if uuid in results}

    def RunPhase(self, phase: str, node_names: list[str] | None = None
                 ) -> dict[str, Any]:
        """Run the hooks of ``phase``: {node name: RpcResult}.

        ``node_names`` (node UUIDs) overrides the LU's nodes. A failing pre
        hook raises HooksAbort; post hook failures become warnings.
        """
        if phase not in _PHASES:
            raise errors.ProgrammerError(f"Unknown hooks phase {phase!r}")
        if self.hooks_path is None:
            return {}
        if phase == constants.HOOKS_PHASE_PRE:
            env = self.pre_env
            nodes = self.pre_nodes if node_names is None else list(node_names)
        else:
            env = self._BuildEnv(phase)
            nodes = self.post_nodes if node_names is None else list(node_names)
            if node_names is None and self.prepare_post_nodes_fn is not None:
                nodes = list(self.prepare_post_nodes_fn(nodes))
        results = self._RunWrapper(nodes, self.hooks_path, phase, env)
        failures = self._Failures(results)
        if failures:
            if phase == constants.HOOKS_PHASE_PRE:
                raise errors.HooksAbort(failures)
            for node, script, output in failures:
                self.log_fn(f"Post hook {script} failed on node {node}:"
                            f" {output or '(no output)'}")
        return results

    def _Failures(self, results: dict[str, Any]) -> list[tuple[str, str, str]]:
        failures = []
        for node, res in results.items():
            if res is None or getattr(res, "offline", False):
                continue
            if res.fail_msg:
                self.log_fn(f"Communication failure to node {node}: {res.fail_msg}")
                continue
            payload = res.payload
            if not isinstance(payload, list):
                self.log_fn(f"Invalid hooks answer from node {node}: {payload!r}")
                continue
            for entry in payload:
                try:
                    script, status, output = entry
                except (TypeError, ValueError):
                    self.log_fn(f"Invalid hooks answer from node {node}: {entry!r}")
                    continue
                if status == constants.HKR_FAIL:
                    failures.append((node, script, output))
        return failures

    def RunConfigUpdate(self) -> None:
        """Run the global "config-update" hooks (post phase, master only)."""
        if self.master_uuid is None:
            return
        phase = constants.HOOKS_PHASE_POST
        hpath = constants.HOOKS_NAME_CFGUPDATE
        try:
            results = self._RunWrapper([self.master_uuid], hpath, phase, {})
        except errors.GenericError as err:
            logging.warning("Cannot run the %s hooks: %s", hpath, err)
            return
        for node, script, output in self._Failures(results):
            self.log_fn(f"Hook {script} failed on node {node}:"
                        f" {output or '(no output)'}")


def _NoRun(node_uuids: list[str], hpath: str, phase: str,
           env: dict[str, str]) -> dict[str, Any]:
    return {}


def _NodeNameFn(cfg: Any) -> Callable[[str], str]:
    """UUID -> node name through the configuration (unknown: the key)."""
    def _Name(uuid: str) -> str:
        try:
            name = cfg.GetNodeName(uuid)
        except errors.GenericError:
            return uuid
        return name or uuid
    return _Name


#: Network attributes exported to hooks (suffix of NETWORK_)
_NETWORK_ENV = (("network", "SUBNET"), ("gateway", "GATEWAY"),
                ("network6", "SUBNET6"), ("gateway6", "GATEWAY6"),
                ("mac_prefix", "MAC_PREFIX"))


def NetworkHookEnv(net: Any, net_uuid: str,
                   prefix: str) -> dict[str, Any]:
    """The NETWORK_* variables of a NIC on a network, as Ganeti exports
    them: NAME, UUID and TAGS always, SUBNET, GATEWAY, SUBNET6, GATEWAY6
    and MAC_PREFIX when the network has them."""
    env: dict[str, Any] = {f"{prefix}NETWORK_UUID": net_uuid}
    if net is None:
        # A dangling reference (gnt-cluster verify reports it)
        env[f"{prefix}NETWORK_NAME"] = net_uuid
        return env
    env[f"{prefix}NETWORK_NAME"] = net.name
    env[f"{prefix}NETWORK_TAGS"] = " ".join(sorted(net.GetTags()))
    for attr, suffix in _NETWORK_ENV:
        value = getattr(net, attr, None)
        if value:
            env[f"{prefix}NETWORK_{suffix}"] = value
    return env


# --- the instance variables every instance LU exports -------------------------------------

def BuildInstanceHookEnv(cfg: Any, instance: Any,
                         override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The standard instance variables (without the ``GANETI_`` prefix).

    As hooks(7) lists them: INSTANCE_NAME, INSTANCE_PRIMARY,
    INSTANCE_SECONDARY (space-separated), INSTANCE_OS_TYPE,
    INSTANCE_STATUS, INSTANCE_MEMORY/MINMEM/MAXMEM, INSTANCE_VCPUS,
    INSTANCE_DISK_TEMPLATE, INSTANCE_HYPERVISOR, INSTANCE_NIC_COUNT and
    INSTANCE_NICn_{NAME,UUID,IP,MAC,MODE,LINK,VLAN,BRIDGE,NETWORK*},
    INSTANCE_DISK_COUNT and INSTANCE_DISKn_{SIZE,MODE,NAME,UUID,DEV_TYPE},
    INSTANCE_TAGS and one INSTANCE_BE_x / INSTANCE_HV_x per parameter.
    ``override`` replaces or adds values (e.g. a new primary node).
    """
    cluster = cfg.GetClusterInfo()
    nodes = cfg.GetInstanceNodes(instance.uuid)
    disks = cfg.GetInstanceDisks(instance.uuid)
    group = cfg.GetNodeGroup(cfg.GetNodeInfo(instance.primary_node).group)
    bep = cluster.FillBE(instance)
    hvp = cluster.FillHV(instance)
    env: dict[str, Any] = {
        "OP_TARGET": instance.name,
        "INSTANCE_NAME": instance.name,
        "INSTANCE_PRIMARY": cfg.GetNodeName(nodes[0]),
        "INSTANCE_SECONDARY": " ".join(cfg.GetNodeNames(nodes[1:])),
        "INSTANCE_OS_TYPE": instance.os,
        "INSTANCE_STATUS": instance.admin_state,
        "INSTANCE_MINMEM": bep.get(constants.BE_MINMEM),
        "INSTANCE_MAXMEM": bep.get(constants.BE_MAXMEM),
        "INSTANCE_MEMORY": bep.get(constants.BE_MAXMEM),
        "INSTANCE_VCPUS": bep.get(constants.BE_VCPUS),
        "INSTANCE_DISK_TEMPLATE": (disks[0].dev_type if disks
                                   else constants.DT_DISKLESS),
        "INSTANCE_HYPERVISOR": instance.hypervisor,
        "INSTANCE_NIC_COUNT": len(instance.nics),
        "INSTANCE_DISK_COUNT": len(disks),
        "INSTANCE_TAGS": " ".join(sorted(instance.tags or ())),
    }
    for idx, nic in enumerate(instance.nics):
        params = cluster.FillNIC(nic, group)
        prefix = f"INSTANCE_NIC{idx}_"
        env[prefix + "NAME"] = nic.name
        env[prefix + "UUID"] = nic.uuid
        env[prefix + "IP"] = nic.ip
        env[prefix + "MAC"] = nic.mac
        env[prefix + "MODE"] = params.get(constants.NIC_MODE)
        env[prefix + "LINK"] = params.get(constants.NIC_LINK)
        env[prefix + "VLAN"] = params.get(constants.NIC_VLAN)
        if params.get(constants.NIC_MODE) == constants.NIC_MODE_BRIDGED:
            env[prefix + "BRIDGE"] = params.get(constants.NIC_LINK)
        if nic.network:
            env.update(NetworkHookEnv(cfg.GetNetwork(nic.network), nic.network, prefix))
    for idx, disk in enumerate(disks):
        prefix = f"INSTANCE_DISK{idx}_"
        env[prefix + "SIZE"] = disk.size
        env[prefix + "MODE"] = disk.mode
        env[prefix + "NAME"] = disk.name
        env[prefix + "UUID"] = disk.uuid
        env[prefix + "DEV_TYPE"] = disk.dev_type
    for params, kind in ((bep, "BE"), (hvp, "HV")):
        for key, value in params.items():
            env[f"INSTANCE_{kind}_{key}"] = value
    if override:
        env.update(override)
    return env
