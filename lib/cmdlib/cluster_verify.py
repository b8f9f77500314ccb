"""Cluster verification: ``gnt-cluster verify``.

``OpClusterVerify`` submits one job verifying the configuration and one
per node group; each reports every problem as one feedback line in
Ganeti's layout, ``  - ERROR: node node2: message``, or with
``error_codes`` ``  - ERROR:ENODEFILECHECK:node:node2:message``, and
returns False when an error (not a warning) was found.

Per node (``node_verify`` and ``node_info`` over RPC): reachability,
protocol and release versions, the checksums of the distributed files
(config.data on master candidates only, the ancillary files, the ssconf
files against the configuration's values), the other nodes' daemons
reachable from it, its clock, its client certificate, and its free memory
and disk, which are reported. Our extension (Ganeti has no such check):
each node runs ensure-dirs' check (``constants.NV_FILEPERMS``,
:mod:`ganeti.tools.ensure_dirs`, without the job queue's contents) and
every file or directory whose owner, group or mode differs from its table
(for instance a key, the RAPI users file or config.data writable by someone
who must not write it) is an ``ENODEFILEPERMS`` error, fixed by running
``ensure-dirs`` on that node. Also ours: each node lists its file storage
directories (``constants.NV_FILESTORAGELIST``) and every file or directory
there that belongs to no instance's disk (a disk image, the directories
leading to it) is reported as an orphan, ``ENODEORPHANFILE``, a warning as
Ganeti's orphan volumes (``ENODEORPHANLV``) are; a directory is reported
once, not what it holds. Orphans in the shared file storage directory are
reported once per group, by the first node listing them.

The LVM and DRBD checks of a group (volume groups, missing and orphan
logical volumes, DRBD minors and usermode helper, degraded disks) are
:class:`ganeti.cmdlib.cluster_disks.GroupStorageVerify`'s, as are
``LUGroupVerifyDisks`` and ``LUClusterRepairDiskSizes``.

N+1 memory redundancy (skipped with ``--no-nplus1-mem``,
``constants.VERIFY_NPLUSONE_MEM`` in ``skip_checks``): for each node of
the group and each node holding primaries of DRBD instances whose
secondary it is, the free memory it reports must cover the minimum memory
of those of the instances that would fail over to it should that primary
node fail (marked up, ``auto_balance`` set); otherwise ``ENODEN1``. Unlike
Ganeti, which also counts instances marked down, only instances marked up
count: a failover does not start the others.

The NICs of the group's instances must be on networks connected to the
group (``EINSTANCENETWORK``, our extension); a NIC address outside its
network, not reserved in it, or used twice in one network is a
configuration error (``ECLUSTERCFG``, from the configuration's checks).
A node lacking a bridge that the default NIC parameters, a bridged NIC of
the group's instances or a bridged network connection of the group names
is ``ENODENET`` "missing bridges", as Ganeti (the connections are ours).

The group's verification first waits until the configuration saved so far
has been distributed (``config_sync.Flush``), so that right after a master
daemon start, which pushes the configuration to every node, the copies it
compares are current.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from ganeti import constants, errors, objects, pathutils, ssconf, utils
from ganeti.cmdlib import instance_nics as nics_mod
from ganeti.cmdlib.base import FeedbackFn
from ganeti.cmdlib.cluster import ClusterLU


class _VerifyErrors:
    """Error reporting shared by the verify LUs (``self._Error``)."""

    op: Any
    bad: bool
    _feedback_fn: FeedbackFn

    def _Error(self, ecode: tuple[str, str, str], item: str | None, msg: str,
               code: str = constants.CV_ERROR) -> None:
        itype, etxt, _ = ecode
        if etxt in (self.op.ignore_errors or []):
            code = constants.CV_WARNING
        if self.op.error_codes:
            line = f"{code}:{etxt}:{itype}:{item or ''}:{msg}"
        else:
            item_text = f" {item}" if item else ""
            line = f"{code}: {itype}{item_text}: {msg}"
        self._feedback_fn(f"  - {line}")
        if code == constants.CV_ERROR:
            self.bad = True

    def _ErrorIf(self, cond: Any, ecode: tuple[str, str, str], item: str | None,
                 msg: str, code: str = constants.CV_ERROR) -> None:
        if cond or self.op.debug_simulate_errors:
            self._Error(ecode, item, msg, code)


class LUClusterVerify(ClusterLU):
    """Submit the verification jobs: the configuration, then each group."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        from ganeti import opcodes
        common = {"debug_simulate_errors": self.op.debug_simulate_errors,
                  "error_codes": self.op.error_codes,
                  "ignore_errors": list(self.op.ignore_errors or []),
                  "verbose": self.op.verbose}
        jobs: list[list[Any]] = []
        if self.op.group_name:
            groups = [self.cfg.LookupNodeGroup(self.op.group_name)]
        else:
            jobs.append([opcodes.OpClusterVerifyConfig(**common)])
            groups = self.cfg.GetNodeGroupList()
        for group_uuid in groups:
            group = self.cfg.GetNodeGroup(group_uuid)
            jobs.append([opcodes.OpClusterVerifyGroup(
                group_name=group.name, skip_checks=list(self.op.skip_checks or []),
                verify_clutter=self.op.verify_clutter, **common)])
        return {constants.JOB_IDS_KEY: self.proc.SubmitManyJobs(jobs)}


class LUClusterVerifyConfig(_VerifyErrors, ClusterLU):
    """Verify the cluster-wide configuration and the master's certificates."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> bool:
        self.bad = False
        self._feedback_fn = feedback_fn
        feedback_fn("* Verifying cluster config")
        for msg in self.cfg.VerifyConfig():
            self._Error(constants.CV_ECLUSTERCFG, None, msg)

        feedback_fn("* Verifying cluster certificate files")
        for cert in (pathutils.NODED_CERT_FILE, pathutils.RAPI_CERT_FILE):
            if not os.path.exists(cert):
                if cert == pathutils.NODED_CERT_FILE:
                    self._Error(constants.CV_ECLUSTERCERT, None,
                                f"Certificate file {cert} is missing")
                continue
            from ganeti.utils import x509
            code, msg = x509.VerifyCertificate(cert)
            self._ErrorIf(code, constants.CV_ECLUSTERCERT, None, msg or "",
                          code=code or constants.CV_ERROR)

        feedback_fn("* Verifying hypervisor parameters")
        cluster = self.cfg.GetClusterInfo()
        from ganeti.cmdlib.cluster import CheckHvParams
        for hv_name in cluster.enabled_hypervisors:
            try:
                CheckHvParams(hv_name, cluster.hvparams.get(hv_name, {}),
                              base=constants.HVC_DEFAULTS.get(hv_name, {}))
            except errors.OpPrereqError as err:
                self._Error(constants.CV_ECLUSTERCFG, None,
                            f"hypervisor {hv_name} parameters: {err.args[0]}")

        feedback_fn("* Verifying all nodes belong to an existing group")
        groups = set(self.cfg.GetNodeGroupList())
        nodes = self.cfg.GetAllNodesInfo()
        dangling = sorted(n.name for n in nodes.values() if n.group not in groups)
        self._ErrorIf(dangling, constants.CV_ECLUSTERDANGLINGNODES, None,
                      f"the following nodes (and their instances) belong to a non"
                      f" existing group: {utils.CommaJoin(dangling)}")
        bad_inst = sorted(inst.name for inst in self.cfg.GetAllInstancesInfo().values()
                          if inst.primary_node not in nodes)
        self._ErrorIf(bad_inst, constants.CV_ECLUSTERDANGLINGINST, None,
                      f"the following instances have a non-existing primary-node:"
                      f" {utils.CommaJoin(bad_inst)}")
        return not self.bad


def _Sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def ExpectedFiles(cfg: Any) -> tuple[dict[str, str | None], set[str], set[str]]:
    """What the nodes should hold: ({path: master's SHA-1 or None if the
    master lacks it}, candidate-only paths, optional paths).

    Paths are the master's local paths; ssconf files get the checksum of
    the text the configuration's values give.
    """
    from ganeti import config_sync
    files = config_sync.ComputeAncillaryFiles(cfg)
    expected: dict[str, str | None] = {}
    for path in files.all_nodes | files.candidates:
        try:
            expected[path] = _Sha1(utils.ReadBinaryFile(path))
        except FileNotFoundError:
            expected[path] = None
    store = ssconf.SimpleStore()
    for key, value in cfg.GetSsconfValues().items():
        text = ssconf._FormatValue(key, value)  # noqa: SLF001 - the writer's format
        expected[store.KeyToFilename(key)] = _Sha1(text.encode("utf-8"))
    return expected, files.candidates, files.optional


def FileStorageDirs(cluster: Any, cfg: Any) -> dict[str, str]:
    """{disk template: cluster path} of the file storage directories to
    look for orphans in: those of the enabled file-based templates and of
    the templates disks still use."""
    used = {disk.dev_type for disk in cfg.GetReadOnlySnapshot().disks.values()}
    result = {}
    for template, directory in ((constants.DT_FILE, cluster.file_storage_dir),
                                (constants.DT_SHARED_FILE,
                                 cluster.shared_file_storage_dir)):
        if directory and (cluster.IsDiskTemplateEnabled(template) or template in used):
            result[template] = os.path.normpath(directory)
    return result


def ExpectedFileDisks(cfg: Any) -> dict[str | None, set[str]]:
    """The paths of the file-based disks: {node UUID: paths of its ``file``
    disks, None: paths of all ``sharedfile`` disks}."""
    snapshot = cfg.GetReadOnlySnapshot()
    result: dict[str | None, set[str]] = {}
    # Disks detached from their instance (on no instance) are no orphans
    owned = [(disk_uuid, inst.primary_node) for inst in snapshot.instances.values()
             for disk_uuid in inst.disks]
    attached = {disk_uuid for disk_uuid, _ in owned}
    owned += [(disk_uuid, None) for disk_uuid in snapshot.disks
              if disk_uuid not in attached]
    for disk_uuid, primary in owned:
        disk = snapshot.disks.get(disk_uuid)
        if disk is None or disk.dev_type not in constants.DTS_FILEBASED or \
                not disk.logical_id or len(disk.logical_id) != 2:
            continue
        path = os.path.normpath(disk.logical_id[1])
        if disk.dev_type == constants.DT_SHARED_FILE:
            result.setdefault(None, set()).add(path)
        else:
            for node_uuid in disk.nodes or ([primary] if primary else []):
                result.setdefault(node_uuid, set()).add(path)
    return result


def _MergeDisks(*maps: dict[str | None, set[str]]) -> dict[str | None, set[str]]:
    result: dict[str | None, set[str]] = {}
    for mapping in maps:
        for key, paths in mapping.items():
            result.setdefault(key, set()).update(paths)
    return result


def OrphanEntries(directory: str, entries: list[str], disk_paths: set[str]) -> list[str]:
    """The orphans among ``entries`` (a node's listing of ``directory``:
    relative paths, directories ending in "/"), as absolute paths: what is
    neither a disk in ``disk_paths`` nor a directory leading to one. Below
    an orphan directory nothing more is reported."""
    wanted: set[str] = set()
    for path in disk_paths:
        if not os.path.isabs(path) or not utils.IsBelowDir(directory, path):
            continue
        rel = os.path.relpath(path, directory)
        wanted.add(rel)
        parent = os.path.dirname(rel)
        while parent:
            wanted.add(parent + "/")
            parent = os.path.dirname(parent)
    orphans: list[str] = []
    orphan_dirs: list[str] = []
    for entry in sorted(entries):
        if not isinstance(entry, str) or entry in wanted:
            continue
        if any(entry.startswith(parent) for parent in orphan_dirs):
            continue
        if entry.endswith("/"):
            orphan_dirs.append(entry)
        orphans.append(os.path.join(directory, entry))
    return orphans


class LUClusterVerifyGroup(_VerifyErrors, ClusterLU):
    """Verify the nodes of one group."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.group_uuid = self.cfg.LookupNodeGroup(self.op.group_name)
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> bool:
        self.bad = False
        self._feedback_fn = feedback_fn
        cfg = self.cfg
        cluster = cfg.GetClusterInfo()
        group = cfg.GetNodeGroup(self.group_uuid)
        all_nodes = cfg.GetAllNodesInfo()
        nodes = [all_nodes[u] for u in group.members if u in all_nodes]
        nodes = utils.NiceSort(nodes, key=lambda n: n.name)
        offline = [n for n in nodes if n.offline]
        online = [n for n in nodes if not n.offline]
        master_uuid = cfg.GetMasterNode()

        feedback_fn("* Gathering data (%d nodes)" % len(online))
        self._FlushConfigDistribution()
        expected, mc_only, optional = ExpectedFiles(cfg)
        vpaths = {pathutils.MakeVirtualPath(p): p for p in expected}
        net_nodes = [(n.name, n.primary_ip, n.secondary_ip,
                      n.noded_port or constants.DEFAULT_NODED_PORT)
                     for n in all_nodes.values() if not n.offline]
        checks: dict[str, Any] = {
            constants.NV_HOSTNAME: None,
            constants.NV_VERSION: None,
            constants.NV_TIME: None,
            constants.NV_FILELIST: sorted(vpaths),
            constants.NV_NODENETTEST: net_nodes,
            constants.NV_CLIENT_CERT: None,
            constants.NV_FILEPERMS: None,
        }
        bridges = self._GroupBridges(cfg, cluster, group)
        if bridges:
            checks[constants.NV_BRIDGES] = bridges
        storage_dirs = FileStorageDirs(cluster, cfg)
        if storage_dirs:
            checks[constants.NV_FILESTORAGELIST] = sorted(set(storage_dirs.values()))
        from ganeti.cmdlib.cluster_disks import GroupStorageVerify
        storage = GroupStorageVerify(self, self.group_uuid)
        checks.update(storage.Checks())
        oob_paths = sorted({cfg.GetNdParams(n).get(constants.ND_OOB_PROGRAM) or ""
                            for n in nodes} - {""})
        if oob_paths:
            checks[constants.NV_OOB_PATHS] = oob_paths
        # Disks in the configuration before and after the nodes answered: a
        # disk made or removed meanwhile is no orphan (creations add the
        # instance first, removals remove the disks first)
        disks_before = ExpectedFileDisks(cfg)
        uuids = [n.uuid for n in online]
        groups_cfg = {g.uuid: g.ToDict() for g in cfg.GetAllNodeGroupsInfo().values()}
        node_groups = {n.name: n.group for n in all_nodes.values()}
        if self.rpc is None:
            raise errors.OpExecError("The master daemon has no node RPC client")
        storage.Expect()
        start = time.time()
        results = self.rpc.call_node_verify(uuids, checks, cluster.cluster_name,
                                            cluster.hvparams, node_groups, groups_cfg)
        end = time.time()
        storage.Expect()
        disk_paths = _MergeDisks(disks_before, ExpectedFileDisks(cfg))
        storage_units: list[tuple[str, str, list[Any]]] = []
        if constants.DT_FILE in cluster.enabled_disk_templates and cluster.file_storage_dir:
            storage_units.append((constants.ST_FILE, cluster.file_storage_dir, []))
        hv_specs = [(hv, cluster.hvparams.get(hv, {}))
                    for hv in cluster.enabled_hypervisors[:1]]
        infos = self.rpc.call_node_info(uuids, storage_units, hv_specs)

        feedback_fn("* Verifying node status")
        shared_reported: set[str] = set()
        for node in online:
            res = results[node.uuid]
            if res.fail_msg:
                self._Error(constants.CV_ENODERPC, node.name,
                            f"while contacting node: {res.fail_msg}")
                continue
            payload = res.payload if isinstance(res.payload, dict) else {}
            self._VerifyNode(node, payload, start, end)
            self._VerifyFiles(node, payload, expected, vpaths, mc_only, optional,
                              node.uuid == master_uuid)
            self._VerifyFilePerms(node, payload)
            if oob_paths:
                self._VerifyOobPaths(node, payload)
            if bridges:
                self._VerifyNodeBridges(node, payload)
            if storage_dirs:
                self._VerifyOrphanFiles(node, payload, storage_dirs, disk_paths,
                                        shared_reported)
            storage.VerifyNode(node, payload)
            self._ReportResources(node, infos.get(node.uuid))
        storage.VerifyInstances(feedback_fn)
        self._VerifyInstanceNetworks(cfg, group)
        if constants.VERIFY_NPLUSONE_MEM not in (self.op.skip_checks or []):
            feedback_fn("* Verifying N+1 Memory redundancy")
            self._VerifyNPlusOneMemory(online, infos)
        if offline:
            feedback_fn(f"  - NOTICE: {len(offline)} offline node(s) found.")
        return not self.bad

    @staticmethod
    def _GroupBridges(cfg: Any, cluster: Any, group: objects.NodeGroup) -> list[str]:
        """The bridges the group's nodes need, as Ganeti: the link of the
        default NIC parameters and of the NICs of the group's instances in
        bridged mode; also (ours) the links of the group's bridged network
        connections, which NICs joining those networks will use."""
        bridged = constants.NIC_MODE_BRIDGED
        params = [cluster.SimpleFillNIC({})]
        members = set(group.members or [])
        params += [cluster.SimpleFillNIC(nic.nicparams or {})
                   for inst in cfg.GetAllInstancesInfo().values()
                   if inst.primary_node in members for nic in inst.nics]
        params += [cluster.SimpleFillNIC(dict(conn))
                   for conn in (group.networks or {}).values()]
        return sorted({p[constants.NIC_LINK] for p in params
                       if p.get(constants.NIC_MODE) == bridged
                       and p.get(constants.NIC_LINK)})

    def _VerifyOobPaths(self, node: objects.Node, payload: dict[str, Any]) -> None:
        """ENODEOOBPATH, as Ganeti: the out-of-band helpers of the group
        must be executable files on the nodes that are or may become the
        master, where they run."""
        if not (node.master_candidate or node.master_capable):
            return
        for problem in payload.get(constants.NV_OOB_PATHS) or []:
            self._ErrorIf(bool(problem), constants.CV_ENODEOOBPATH, node.name,
                          str(problem))

    def _VerifyNodeBridges(self, node: objects.Node, payload: dict[str, Any]) -> None:
        """ENODENET for the bridges the node lacks (Ganeti's messages)."""
        missing = payload.get(constants.NV_BRIDGES)
        if not isinstance(missing, list):
            self._Error(constants.CV_ENODENET, node.name,
                        "did not return valid bridge information"
                        + (f": {missing}" if isinstance(missing, str) else ""))
            return
        self._ErrorIf(bool(missing), constants.CV_ENODENET, node.name,
                      f"missing bridges: {', '.join(sorted(missing))}")

    def _VerifyInstanceNetworks(self, cfg: Any, group: objects.NodeGroup) -> None:
        """NICs of the group's instances on networks the group is not
        connected to (``EINSTANCENETWORK``; their addresses are checked
        with the configuration)."""
        members = set(group.members or [])
        instances = [inst for inst in cfg.GetAllInstancesInfo().values()
                     if inst.primary_node in members
                     and any(nic.network for nic in inst.nics)]
        if not instances:
            return
        self._feedback_fn("* Verifying instance networks")
        for name, msg in nics_mod.VerifyInstanceNetworks(
                cfg, group, utils.NiceSort(instances, key=lambda i: i.name)):
            self._Error(constants.CV_EINSTANCENETWORK, name, msg)

    def _VerifyNode(self, node: objects.Node, payload: dict[str, Any],
                    start: float, end: float) -> None:
        version = payload.get(constants.NV_VERSION)
        if not (isinstance(version, (list, tuple)) and len(version) == 2):
            self._Error(constants.CV_ENODEVERSION, node.name,
                        "connection to node returned invalid data")
            return
        proto, release = version
        self._ErrorIf(proto != constants.PROTOCOL_VERSION, constants.CV_ENODEVERSION,
                      node.name, f"incompatible protocol versions: master"
                      f" {constants.PROTOCOL_VERSION}, node {proto}")
        self._ErrorIf(release != constants.RELEASE_VERSION, constants.CV_ENODEVERSION,
                      node.name, f"software version mismatch: master"
                      f" {constants.RELEASE_VERSION}, node {release}",
                      code=constants.CV_WARNING)
        hostname = payload.get(constants.NV_HOSTNAME)
        self._ErrorIf(hostname != node.name, constants.CV_ENODESETUP, node.name,
                      f"node reports host name '{hostname}', expected '{node.name}'")
        net = payload.get(constants.NV_NODENETTEST)
        if not isinstance(net, dict):
            self._Error(constants.CV_ENODENET, node.name,
                        "node hasn't returned node tcp connectivity data")
        else:
            for other in utils.NiceSort(net):
                self._Error(constants.CV_ENODENET, node.name,
                            f"tcp communication with node '{other}': {net[other]}")
        ntime = payload.get(constants.NV_TIME)
        try:
            ntime_merged = float(ntime[0]) + float(ntime[1]) / 1e6  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            self._Error(constants.CV_ENODETIME, node.name, "Node returned invalid time")
        else:
            skew = constants.NODE_MAX_CLOCK_SKEW
            if ntime_merged < start - skew:
                diverge = f"{start - ntime_merged:.1f}s"
            elif ntime_merged > end + skew:
                diverge = f"{ntime_merged - end:.1f}s"
            else:
                diverge = ""
            self._ErrorIf(diverge, constants.CV_ENODETIME, node.name,
                          f"Node time diverges by at least {diverge} from master"
                          " node time")
        cert = payload.get(constants.NV_CLIENT_CERT)
        if isinstance(cert, (list, tuple)) and len(cert) == 2 and cert[0]:
            self._Error(constants.CV_ECLUSTERCLIENTCERT, node.name,
                        f"Client certificate of node '{node.name}' failed"
                        f" validation: {cert[1]}", code=cert[0])

    def _VerifyFiles(self, node: objects.Node, payload: dict[str, Any],
                     expected: dict[str, str | None], vpaths: dict[str, str],
                     mc_only: set[str], optional: set[str], is_master: bool) -> None:
        sums = payload.get(constants.NV_FILELIST)
        if not isinstance(sums, dict):
            self._Error(constants.CV_ENODEFILECHECK, node.name,
                        "node hasn't returned file checksum data")
            return
        node_sums = {vpaths.get(vpath, vpath): digest for vpath, digest in sums.items()}
        ssconf_dir = pathutils.SSCONF_DIR
        for path in sorted(expected):
            want = expected[path]
            have = node_sums.get(path)
            is_ssconf = os.path.dirname(path) == ssconf_dir and \
                os.path.basename(path).startswith(constants.SSCONF_FILEPREFIX)
            label = pathutils.MakeVirtualPath(path).split(",", 1)[-1] \
                if pathutils.IsVirtualCluster() else path
            if path in mc_only and not node.master_candidate and not is_master:
                self._ErrorIf(have is not None, constants.CV_ENODEFILECHECK, node.name,
                              f"file '{label}' should not exist on this node (not a"
                              " master candidate)")
                continue
            if want is None:
                continue  # not on the master either (an optional file)
            if have is None:
                if path not in optional:
                    self._Error(constants.CV_ENODEFILECHECK, node.name,
                                f"file '{label}' missing")
                continue
            if have != want:
                what = "ssconf file" if is_ssconf else "file"
                self._Error(constants.CV_ENODEFILECHECK, node.name,
                            f"{what} '{label}' checksum mismatch (node {have[:12]},"
                            f" expected {want[:12]})")

    def _VerifyFilePerms(self, node: objects.Node, payload: dict[str, Any]) -> None:
        """Report each owner, group or mode the node found wrong (our
        extension; the node runs ensure-dirs' check)."""
        perms = payload.get(constants.NV_FILEPERMS)
        if not isinstance(perms, list):
            self._Error(constants.CV_ENODEFILEPERMS, node.name,
                        "node hasn't returned file permission data")
            return
        for entry in perms:
            try:
                vpath, problem = entry
            except (TypeError, ValueError):
                self._Error(constants.CV_ENODEFILEPERMS, node.name,
                            f"invalid file permission entry {entry!r}")
                continue
            if not vpath:
                self._Error(constants.CV_ENODEFILEPERMS, node.name, str(problem))
                continue
            # As on the node (a virtual path without its marker)
            label = str(vpath).split(",", 1)[-1] if pathutils.IsVirtualCluster() \
                else vpath
            self._Error(constants.CV_ENODEFILEPERMS, node.name,
                        f"'{label}': {problem} (run ensure-dirs on the node to fix it)")

    def _FlushConfigDistribution(self) -> None:
        """Wait (a bounded time) until the saved configuration is pushed."""
        sync = getattr(self.context, "config_sync", None)
        flush = getattr(sync, "Flush", None)
        if flush is not None and not flush(constants.VERIFY_CONFIG_FLUSH_TIMEOUT):
            self._feedback_fn("  - NOTICE: the configuration is still being"
                              " distributed; copies may show as out of date")

    def _VerifyOrphanFiles(self, node: objects.Node, payload: dict[str, Any],
                           storage_dirs: dict[str, str],
                           disk_paths: dict[str | None, set[str]],
                           shared_reported: set[str]) -> None:
        """Report what the node's file storage directories hold that no
        instance's disk uses (our extension, see the module doc)."""
        listing = payload.get(constants.NV_FILESTORAGELIST)
        if not isinstance(listing, dict):
            self._Error(constants.CV_ENODEFILESTORAGEPATHUNUSABLE, node.name,
                        "node hasn't returned the file storage listing")
            return
        for template in sorted(storage_dirs):
            directory = storage_dirs[template]
            entries = listing.get(directory)
            if isinstance(entries, str):
                self._Error(constants.CV_ENODEFILESTORAGEPATHUNUSABLE, node.name,
                            entries)
                continue
            if not isinstance(entries, list):
                self._Error(constants.CV_ENODEFILESTORAGEPATHUNUSABLE, node.name,
                            f"node hasn't listed '{directory}'")
                continue
            shared = template == constants.DT_SHARED_FILE
            known = disk_paths.get(None if shared else node.uuid, set())
            for orphan in OrphanEntries(directory, entries, known):
                if shared:
                    if orphan in shared_reported:
                        continue
                    shared_reported.add(orphan)
                kind = "directory" if orphan.endswith("/") else "file"
                self._Error(constants.CV_ENODEORPHANFILE, node.name,
                            f"{kind} {orphan.rstrip('/')} is unknown",
                            code=constants.CV_WARNING)

    def _VerifyNPlusOneMemory(self, nodes: list[objects.Node],
                              infos: dict[str, Any]) -> None:
        """Each node holding DRBD secondaries can take, should the primary
        node of some of them fail, those that would fail over to it: the
        instances marked up with ``auto_balance``, at their minimum memory
        (what a failover needs), against the node's free memory."""
        snap = self.cfg.GetReadOnlySnapshot()
        cluster = snap.cluster
        wanted = {node.uuid for node in nodes}
        # secondary node -> primary node -> minimum memory of each instance
        needs: dict[str, dict[str, list[int]]] = {}
        for inst in snap.instances.values():
            if inst.forthcoming or inst.admin_state != constants.ADMINST_UP:
                continue
            bep = cluster.FillBE(inst)
            if not bep.get(constants.BE_AUTO_BALANCE):
                continue
            secondaries: set[str] = set()
            for disk_uuid in inst.disks:
                disk = snap.disks.get(disk_uuid)
                if disk is not None and disk.dev_type in constants.DTS_INT_MIRROR:
                    secondaries.update(disk.nodes or [])
            secondaries.discard(inst.primary_node)
            for snode in secondaries & wanted:
                needs.setdefault(snode, {}).setdefault(inst.primary_node, []).append(
                    int(bep[constants.BE_MINMEM]))
        for node in nodes:
            if node.uuid not in needs:
                continue
            free = _FreeMemory(infos.get(node.uuid))
            if free is None:
                continue  # already reported (ENODEHV)
            by_primary = needs[node.uuid]
            for pnode_uuid in utils.NiceSort(
                    by_primary, key=lambda uuid: getattr(snap.nodes.get(uuid), "name", uuid)):
                needed = sum(by_primary[pnode_uuid])
                pnode = snap.nodes.get(pnode_uuid)
                self._ErrorIf(free < needed, constants.CV_ENODEN1, node.name,
                              "not enough memory to accomodate instance failovers should"
                              f" node {pnode.name if pnode else pnode_uuid} fail"
                              f" ({needed} MiB needed, {free} MiB available)")

    def _ReportResources(self, node: objects.Node, res: Any) -> None:
        if res is None or res.fail_msg:
            msg = res.fail_msg if res is not None else "no answer"
            self._Error(constants.CV_ENODEHV, node.name,
                        f"cannot get node information: {msg}")
            return
        try:
            _, storage, hv_info = res.payload
        except (TypeError, ValueError):
            self._Error(constants.CV_ENODEHV, node.name,
                        "node returned invalid node information")
            return
        parts = []
        if hv_info:
            info = hv_info[0]
            parts.append(f"memory free {info.get('memory_free')} MiB of"
                         f" {info.get('memory_total')} MiB")
        for unit in storage or []:
            parts.append(f"{unit.get('type')} storage {unit.get('name')}: free"
                         f" {unit.get('storage_free')} MiB of"
                         f" {unit.get('storage_size')} MiB")
        if parts:
            self._feedback_fn(f"    node {node.name}: {'; '.join(parts)}")


def _FreeMemory(res: Any) -> int | None:
    """The free memory (MiB) in a node_info answer, or None."""
    if res is None or res.fail_msg:
        return None
    try:
        return int(res.payload[2][0]["memory_free"])
    except (TypeError, ValueError, IndexError, KeyError):
        return None


class LUClusterVerifyDisks(ClusterLU):
    """Submit one ``OpGroupVerifyDisks`` job per node group (or the one named)."""

    REQ_BGL = False

    def ExpandNames(self) -> None:
        self.needed_locks = {}

    def Exec(self, feedback_fn: FeedbackFn) -> dict[str, Any]:
        from ganeti import opcodes
        if self.op.group_name:
            groups = [self.cfg.LookupNodeGroup(self.op.group_name)]
        else:
            groups = self.cfg.GetNodeGroupList()
        jobs = [[opcodes.OpGroupVerifyDisks(group_name=self.cfg.GetNodeGroup(uuid).name,
                                            is_strict=self.op.is_strict)]
                for uuid in groups]
        return {constants.JOB_IDS_KEY: self.proc.SubmitManyJobs(jobs)}
