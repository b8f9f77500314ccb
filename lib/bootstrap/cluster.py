"""Cluster bootstrap: init, the end of destroy, master failover.

These run in the gnt-cluster process on a node, not in the master daemon
(which does not run yet, or is being moved):

- :func:`InitCluster` refuses when a configuration exists, checks every
  option, creates the directories, the certificates and keys
  (``crypto_setup``), the first configuration (``config.InitConfig``) and
  the ssconf files, starts the node daemon (unless it runs) and the master
  daemons, then submits ``OpClusterPostInit``;
- :func:`FinalizeClusterDestroy` stops the master's daemons and removes its
  cluster files once ``OpClusterDestroy`` has checked the cluster is empty;
- :func:`MasterFailover`, run on the new master, holds Ganeti's vote (every
  node says who it thinks the master is, :func:`GatherMasterVotes`), stops
  the old master's daemons over RPC, updates and distributes the
  configuration, and starts the master daemons here.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ganeti import (config, constants, crypto_setup, daemon_util, errors, objects,
                    pathutils, ssconf, utils)
from ganeti import ssh_keys
from ganeti.cmdlib import cluster as cluster_params
from ganeti.cmdlib import resource_state

FeedbackFn = Callable[[str], None]


def _Log(feedback_fn: FeedbackFn | None, msg: str) -> None:
    logging.info("%s", msg)
    if feedback_fn is not None:
        feedback_fn(msg)


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def ClusterDirs() -> list[tuple[str, int]]:
    """The directories a node of the cluster needs (what ensure-dirs makes)."""
    return [
        (pathutils.DATA_DIR, 0o755),
        (pathutils.RUN_DIR, 0o755),
        (pathutils.SOCKET_DIR, 0o750),
        (pathutils.LOG_DIR, 0o755),
        (pathutils.CONF_DIR, 0o755),
        (pathutils.LOCK_DIR, 0o755),
        (pathutils.QUEUE_DIR, 0o700),
        (pathutils.JOB_QUEUE_ARCHIVE_DIR, 0o700),
        (pathutils.RAPI_DATA_DIR, 0o750),
        (pathutils.CRYPTO_KEYS_DIR, 0o700),
        (pathutils.BDEV_CACHE_DIR, 0o755),
        (pathutils.DISK_LINKS_DIR, 0o755),
    ]


def _CheckIp(address: str, what: str) -> str:
    if not utils.IPAddress.IsValid(address):
        raise _Inval(f"Invalid {what} '{address}': not an IP address")
    return address


def _ResolveMasterIp(cluster_name: str, master_ip: str | None, node_ip: str,
                     feedback_fn: FeedbackFn | None) -> str:
    if master_ip:
        return _CheckIp(master_ip, "master IP")
    try:
        return utils.Hostname.GetIP(cluster_name)
    except errors.ResolverError:
        if not pathutils.IsVirtualCluster():
            raise
    # A virtual cluster's names are not in DNS: its master IP is the node's
    _Log(feedback_fn, f"Cluster name {cluster_name} does not resolve; using the"
         f" master node's address {node_ip} as the master IP (virtual cluster)")
    return node_ip


def _FillHvParams(enabled: list[str], given: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, dict[str, Any]]:
    unknown = sorted(set(given) - constants.HYPER_TYPES)
    if unknown:
        raise _Inval(f"Unknown hypervisor(s) in the hypervisor parameters:"
                     f" {', '.join(unknown)}")
    result = {}
    for hv_name in constants.HYPER_TYPES:
        params = dict(constants.HVC_DEFAULTS.get(hv_name, {}))
        if hv_name in given:
            params.update(cluster_params.CheckHvParams(hv_name, given[hv_name],
                                                       base=params))
        if hv_name in enabled or hv_name in given:
            result[hv_name] = params
    return result


def InitCluster(cluster_name: str, mac_prefix: str = constants.DEFAULT_MAC_PREFIX,
                master_netdev: str = "lo", master_netmask: int | None = None,
                master_ip: str | None = None,
                file_storage_dir: str | None = None,
                shared_file_storage_dir: str | None = None,
                gluster_storage_dir: str | None = None,
                candidate_pool_size: int = constants.MASTER_POOL_SIZE_DEFAULT,
                secondary_ip: str | None = None, vg_name: str | None = None,
                beparams: Mapping[str, Any] | None = None,
                nicparams: Mapping[str, Any] | None = None,
                ndparams: Mapping[str, Any] | None = None,
                hvparams: Mapping[str, Mapping[str, Any]] | None = None,
                diskparams: Mapping[str, Mapping[str, Any]] | None = None,
                ipolicy: Mapping[str, Any] | None = None,
                enabled_hypervisors: Iterable[str] | None = None,
                enabled_disk_templates: Iterable[str] | None = None,
                modify_etc_hosts: bool = True, modify_ssh_setup: bool = True,
                maintain_node_health: bool = False, drbd_helper: str | None = None,
                uid_pool: Iterable[Any] | None = None,
                default_iallocator: str = "",
                default_iallocator_params: Mapping[str, Any] | None = None,
                primary_ip_version: int = 4, prealloc_wipe_disks: bool = False,
                use_external_mip_script: bool = False,
                install_image: str = "", zeroing_image: str = "",
                compression_tools: Iterable[str] | None = None,
                enabled_user_shutdown: bool = False,
                node_ip: str | None = None, noded_port: int | None = None,
                confd_port: int | None = None, start_daemons: bool = True,
                hv_state: Mapping[str, Mapping[str, Any]] | None = None,
                disk_state: Mapping[str, Any] | None = None,
                ssh_key_type: str | None = None, ssh_key_bits: int | None = None,
                feedback_fn: FeedbackFn | None = None) -> objects.ConfigData:
    """Initialise a cluster with this node as its master; return the config.

    ``node_ip``, ``noded_port`` and ``confd_port`` are our extensions for
    virtual clusters (see doc/design-cluster.rst). With ``start_daemons``
    false nothing is started and no post-init job is submitted (tests).

    @raise errors.OpPrereqError: for an existing cluster or a bad option;
        nothing is changed then
    """
    cfg_file = pathutils.CLUSTER_CONF_FILE
    if os.path.exists(cfg_file):
        raise errors.OpPrereqError(
            f"Cluster is already initialised (configuration {cfg_file} exists)",
            errors.ECODE_STATE)

    # --- check everything before changing anything -----------------------------
    hostname = utils.Hostname.GetSysName()
    cluster_name = utils.Hostname.GetNormalizedName(cluster_name)
    if node_ip:
        node_ip = _CheckIp(node_ip, "node IP")
    else:
        node_ip = utils.Hostname.GetIP(hostname)
    if utils.IPAddress.IsValid(node_ip) and node_ip.startswith("127.") \
            and not pathutils.IsVirtualCluster():
        logging.warning("The master node's IP %s is a loopback address", node_ip)
    secondary_ip = _CheckIp(secondary_ip, "secondary IP") if secondary_ip else node_ip
    master_ip = _ResolveMasterIp(cluster_name, master_ip, node_ip, feedback_fn)
    if primary_ip_version not in (4, 6):
        raise _Inval(f"Invalid primary IP version {primary_ip_version}: 4 or 6")
    family = constants.IP6_ADDRESS_FAMILY if primary_ip_version == 6 \
        else constants.IP4_ADDRESS_FAMILY
    netmask_limit = 128 if primary_ip_version == 6 else 32
    if master_netmask is None:
        master_netmask = netmask_limit
    if not 0 <= master_netmask <= netmask_limit:
        raise _Inval(f"Invalid master netmask {master_netmask}")
    for what, port in (("node daemon port", noded_port), ("confd port", confd_port)):
        if port is not None and not 0 < port < 65536:
            raise _Inval(f"Invalid {what} {port}")
    mac_prefix = cluster_params.CheckMacPrefix(mac_prefix)
    hv_list = cluster_params.CheckHypervisorList(
        enabled_hypervisors or [constants.DEFAULT_ENABLED_HYPERVISOR])
    dt_list = cluster_params.CheckDiskTemplateList(
        enabled_disk_templates or constants.DEFAULT_ENABLED_DISK_TEMPLATES)
    filled_hvp = _FillHvParams(hv_list, hvparams or {})
    filled_be = objects.FillDict(constants.BEC_DEFAULTS,
                                 cluster_params.CheckBeParams(beparams or {}))
    filled_nic = objects.FillDict(constants.NICC_DEFAULTS,
                                  cluster_params.CheckNicParams(nicparams or {}))
    filled_nd = objects.FillDict(constants.NDC_DEFAULTS,
                                 cluster_params.CheckNdParams(ndparams or {}))
    disk_given = cluster_params.CheckDiskParams(diskparams or {})
    filled_disk = {dt: objects.FillDict(constants.DISK_DT_DEFAULTS.get(dt, {}),
                                        disk_given.get(dt, {}))
                   for dt in constants.DISK_TEMPLATES}
    filled_ipolicy = objects.FillDict(constants.IPOLICY_DEFAULTS,
                                      cluster_params.CheckIpolicy(ipolicy or {}))
    uids = cluster_params.CheckUidRanges(uid_pool or [])
    hv_state_static = resource_state.InitialHvState(hv_state, hv_list)
    disk_state_static = resource_state.InitialDiskState(disk_state)
    ssh_key_type = ssh_key_type or constants.DEFAULT_SSH_KEY_TYPE
    ssh_key_bits = ssh_keys.DetermineKeyBits(ssh_key_type, ssh_key_bits)
    if candidate_pool_size < 1:
        raise _Inval(f"Invalid candidate pool size {candidate_pool_size}: must be"
                     " at least 1")
    if vg_name is None and (constants.DT_PLAIN in dt_list or constants.DT_DRBD8 in dt_list):
        vg_name = constants.DEFAULT_VG
    storage_dirs = {}
    for what, value, default, template in (
            ("file storage", file_storage_dir, constants.DEFAULT_FILE_STORAGE_DIR,
             constants.DT_FILE),
            ("shared file storage", shared_file_storage_dir,
             constants.DEFAULT_SHARED_FILE_STORAGE_DIR, constants.DT_SHARED_FILE),
            ("Gluster storage", gluster_storage_dir, constants.DEFAULT_GLUSTER_STORAGE_DIR,
             constants.DT_GLUSTER)):
        path = cluster_params.CheckStorageDir(value if value is not None else default,
                                              what)
        storage_dirs[template] = path

    cluster = objects.Cluster(
        serial_no=1, rsahostkeypub="", dsahostkeypub="",
        highest_used_port=constants.FIRST_DRBD_PORT - 1,
        mac_prefix=mac_prefix, volume_group_name=vg_name, tcpudp_port_pool=set(),
        master_ip=master_ip, master_netmask=master_netmask,
        master_netdev=master_netdev, cluster_name=cluster_name,
        file_storage_dir=storage_dirs[constants.DT_FILE],
        shared_file_storage_dir=storage_dirs[constants.DT_SHARED_FILE],
        gluster_storage_dir=storage_dirs[constants.DT_GLUSTER],
        enabled_hypervisors=hv_list, beparams={constants.PP_DEFAULT: filled_be},
        nicparams={constants.PP_DEFAULT: filled_nic}, ndparams=filled_nd,
        hvparams=filled_hvp, diskparams=filled_disk, ipolicy=filled_ipolicy,
        candidate_pool_size=candidate_pool_size, modify_etc_hosts=modify_etc_hosts,
        modify_ssh_setup=modify_ssh_setup, uid_pool=uids,
        maintain_node_health=maintain_node_health,
        drbd_usermode_helper=drbd_helper, default_iallocator=default_iallocator,
        default_iallocator_params=dict(default_iallocator_params or {}),
        primary_ip_family=family, prealloc_wipe_disks=prealloc_wipe_disks,
        use_external_mip_script=use_external_mip_script,
        enabled_disk_templates=dt_list, install_image=install_image,
        zeroing_image=zeroing_image,
        compression_tools=list(compression_tools or constants.DEFAULT_COMPRESSION_TOOLS),
        enabled_user_shutdown=enabled_user_shutdown,
        hv_state_static=hv_state_static, disk_state_static=disk_state_static,
        ssh_key_type=ssh_key_type, ssh_key_bits=ssh_key_bits,
        uuid=objects.GenerateUUID())
    master = objects.Node(name=hostname, primary_ip=node_ip, secondary_ip=secondary_ip,
                          noded_port=noded_port, confd_port=confd_port,
                          vm_capable=True, ndparams={})
    # --- act ---------------------------------------------------------------------
    _Log(feedback_fn, "Creating directories")
    for path, mode in ClusterDirs():
        os.makedirs(path, mode=mode, exist_ok=True)
    utils.EnsureDirs(ClusterDirs())
    for template, path in storage_dirs.items():
        if template in dt_list and path:
            local = path if not pathutils.IsVirtualCluster() or \
                utils.IsBelowDir(pathutils.GetRootDirectory(), path) \
                else pathutils.AddNodePrefix(path)
            try:
                os.makedirs(local, mode=0o750, exist_ok=True)
            except OSError as err:
                raise errors.OpPrereqError(f"Cannot create the storage directory"
                                           f" '{local}': {err}",
                                           errors.ECODE_ENVIRON) from err

    _Log(feedback_fn, "Generating certificates and keys")
    crypto_setup.GenerateClusterCrypto(False, False, False, False, False,
                                       master_name=hostname)
    if not os.path.exists(pathutils.SPICE_CERT_FILE):
        crypto_setup.GenerateSpiceCert(pathutils.SPICE_CERT_FILE,
                                       pathutils.SPICE_CACERT_FILE)

    _Log(feedback_fn, "Writing the configuration")
    data = config.InitConfig(constants.CONFIG_VERSION, cluster, master, cfg_file)
    if modify_ssh_setup:
        _Log(feedback_fn, f"Creating root's {ssh_key_type} SSH key ({ssh_key_bits}"
             " bits)")
        ssh_keys.SetupMasterKeys(data.cluster.master_node, hostname, ssh_key_type,
                                 ssh_key_bits)
    ssconf.SimpleStore().WriteFiles(config.ComputeSsconfValues(data))

    if start_daemons:
        _StartDaemons(feedback_fn)
        _Log(feedback_fn, "Running the post-init job")
        from ganeti import cli, opcodes
        cli.SubmitOpCode(opcodes.OpClusterPostInit())
    return data


def _StartDaemons(feedback_fn: FeedbackFn | None) -> None:
    for name in (constants.NODED,):
        _Log(feedback_fn, daemon_util.StartDaemon(name))
    for message in daemon_util.StartMaster():
        _Log(feedback_fn, message)


def FinalizeClusterDestroy(master_uuid: str, feedback_fn: FeedbackFn | None = None
                           ) -> None:
    """Stop the master's daemons and remove its cluster files.

    Run on the master by ``gnt-cluster destroy`` after OpClusterDestroy
    succeeded (which checked that no other node or instance is left and
    returned ``master_uuid``). Problems are logged, not raised: the cluster
    is being removed either way.
    """
    logging.info("Destroying the cluster (master node %s)", master_uuid)
    for stop in (daemon_util.StopMaster,):
        for message in stop():
            _Log(feedback_fn, message)
    for name in (constants.CONFD,):
        _Log(feedback_fn, daemon_util.StopDaemon(name))
    removed = [pathutils.CLUSTER_CONF_FILE, pathutils.NODED_CERT_FILE,
               pathutils.NODED_CLIENT_CERT_FILE, pathutils.RAPI_CERT_FILE,
               pathutils.CONFD_HMAC_KEY, pathutils.CLUSTER_DOMAIN_SECRET_FILE,
               pathutils.SPICE_CERT_FILE, pathutils.SPICE_CACERT_FILE,
               pathutils.JOB_QUEUE_DRAIN_FILE, pathutils.WATCHER_PAUSEFILE]
    removed.extend(ssconf.SimpleStore().GetFileList())
    for path in removed:
        try:
            utils.RemoveFile(path)
        except OSError as err:
            logging.warning("Cannot remove %s: %s", path, err)
    _PurgeQueue()
    _Log(feedback_fn, daemon_util.StopDaemon(constants.NODED))


def _PurgeQueue() -> None:
    import shutil
    for path in (pathutils.QUEUE_DIR,):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def GetMaster() -> str:
    """The master node's name according to this node's ssconf."""
    return ssconf.SimpleStore().GetMasterNode()


def GatherMasterVotes(node_names: list[str], runner: Any = None
                      ) -> list[tuple[str | None, int]]:
    """Ask every node who the master is; return [(answer, votes)], most first.

    A node that does not answer votes None. Ties sort by name for a stable
    answer.
    """
    if not node_names:
        return []
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromSsconf()
    results = runner.call_master_node_name(node_names)
    votes: Counter[str | None] = Counter()
    for name in node_names:
        res = results.get(name)
        if res is None or res.fail_msg or not isinstance(res.payload, str):
            logging.warning("Node %s did not vote: %s", name,
                            res.fail_msg if res is not None else "no answer")
            votes[None] += 1
        else:
            votes[res.payload] += 1
    return sorted(votes.items(), key=lambda item: (-item[1], item[0] or ""))


def CheckMasterVotes(old_master: str, vote_list: list[tuple[str | None, int]],
                     asked: int) -> None:
    """Refuse unless a majority of the ``asked`` nodes named ``old_master``.

    @raise errors.OpPrereqError: naming what the nodes said
    """
    if asked == 0:
        return
    top, top_votes = vote_list[0] if vote_list else (None, 0)
    summary = ", ".join(f"{name or 'no answer'}: {count}" for name, count in vote_list)
    if top is None:
        raise errors.OpPrereqError(
            f"Cluster is inconsistent, most nodes did not respond ({summary})",
            errors.ECODE_ENVIRON)
    if top != old_master:
        raise errors.OpPrereqError(
            f"I have a wrong configuration, I believe the master is {old_master}"
            f" but the other nodes voted {top} ({summary}); resync the"
            " configuration of this node", errors.ECODE_STATE)
    if top_votes * 2 <= asked:
        raise errors.OpPrereqError(
            f"No majority of nodes agrees that {old_master} is the master"
            f" ({top_votes} of {asked} nodes; {summary}); use --no-voting to"
            " force the failover", errors.ECODE_ENVIRON)


def VotingNodes(ss: Any, myself: str, ignore_offline_nodes: bool = False
                ) -> tuple[list[str], int]:
    """The nodes to ask who the master is (the online ones but ``myself``)
    and how many offline nodes count as not answering: all of them, as in
    Ganeti, unless ``ignore_offline_nodes`` leaves them out of the vote
    (and of the majority needed)."""
    online = set(ss.GetOnlineNodeList())
    asked = [n for n in ss.GetOnlineNodeList() if n != myself]
    offline = 0 if ignore_offline_nodes else \
        sum(1 for n in ss.GetNodeList() if n not in online and n != myself)
    return asked, offline


def MasterFailover(no_voting: bool = False, feedback_fn: FeedbackFn | None = None,
                   runner: Any = None, ignore_offline_nodes: bool = False) -> int:
    """Make this node the master; return an exit code.

    Run on the new master, which must be a master candidate. Unless
    ``no_voting``, a majority of the other nodes must agree who the old
    master is; offline nodes count as not agreeing unless
    ``ignore_offline_nodes`` (see :func:`VotingNodes`).

    @raise errors.OpPrereqError: when this node cannot become the master
    """
    ss = ssconf.SimpleStore()
    old_master, new_master = ssconf.GetMasterAndMyself(ss)
    if old_master == new_master:
        raise errors.OpPrereqError(
            "This command must be run on the node where you want the new master"
            f" to be; {old_master} is already the master", errors.ECODE_INVAL)
    candidates = ss.GetMasterCandidates()
    if new_master not in candidates:
        raise errors.OpPrereqError(
            f"This node ({new_master}) is not a master candidate; only one of"
            f" {', '.join(candidates)} can become the master", errors.ECODE_STATE)
    if runner is None:
        from ganeti.rpc.node import RpcRunner
        runner = RpcRunner.FromSsconf()
    others, offline = VotingNodes(ss, new_master, ignore_offline_nodes)
    if not no_voting:
        votes = GatherMasterVotes(others, runner)
        if offline:
            counted = dict(votes)
            counted[None] = counted.get(None, 0) + offline
            votes = sorted(counted.items(), key=lambda item: (-item[1], item[0] or ""))
        CheckMasterVotes(old_master, votes, len(others) + offline)

    cfg = config.ConfigWriter(accept_foreign=True, offline=True)
    new_uuid = None
    for node in cfg.GetAllNodesInfo().values():
        if node.name == new_master:
            new_uuid = node.uuid
    if new_uuid is None:
        raise errors.OpPrereqError(f"This node ({new_master}) is not in the"
                                   " configuration", errors.ECODE_NOENT)

    _Log(feedback_fn, f"Stopping the master daemons on {old_master}")
    res = runner.call_node_stop_master(old_master)
    if res.fail_msg:
        logging.warning("Could not stop the master daemons on %s: %s", old_master,
                        res.fail_msg)
        _Log(feedback_fn, f"Warning: could not stop the master daemons on the old"
             f" master {old_master}: {res.fail_msg}; please stop them manually")

    _Log(feedback_fn, f"Updating the configuration: {new_master} is the master")
    cluster = cfg.GetClusterInfo()
    cluster.master_node = new_uuid
    cfg.Update(cluster, None)
    new_node = cfg.GetNodeInfo(new_uuid)
    if new_node is not None and not new_node.master_candidate:
        new_node.master_candidate = True
        cfg.Update(new_node, None)

    from ganeti import config_sync
    from ganeti.rpc.node import RpcRunner as _Runner
    dist_runner = _Runner.FromConfig(cfg)
    failed = config_sync.DistributeConfig(cfg, dist_runner)
    for name, msg in sorted(failed.items()):
        _Log(feedback_fn, f"Warning: could not distribute the configuration to"
             f" {name}: {msg}")

    _Log(feedback_fn, "Starting the master daemons on this node")
    try:
        for message in daemon_util.StartMaster(no_voting):
            _Log(feedback_fn, message)
    except errors.GenericError as err:
        _Log(feedback_fn, f"Could not start the master role on the new master"
             f" {new_master}: {err}")
        return constants.EXIT_FAILURE
    return constants.EXIT_SUCCESS
