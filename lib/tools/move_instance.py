"""move-instance: move instances from one cluster to another through RAPI.

Both clusters must share the cluster domain secret (``gnt-cluster
renew-crypto --cluster-domain-secret=FILE``). For each instance:

1. ``prepare-export?mode=remote`` on the source: a per-move key on the
   instance's primary node, its signed certificate, a signed handshake;
2. an instance creation in mode ``remote-import`` on the destination with
   that handshake and certificate: its job creates the disks, starts one
   importer per disk and writes their signed addresses and its own signed
   certificate to the job's log (an entry of type ``remote-import``);
3. ``export`` with mode ``remote`` on the source with those addresses and
   that certificate: the source shuts the instance down, sends each disk
   straight to its importer (TLS, each side accepting only the other's
   per-move certificate) and starts the instance again;
4. once both jobs succeeded, the source instance is removed unless
   ``--keep-source-instance``.

The tool only carries signed messages: neither cluster trusts it with
anything it could forge. RAPI certificates are verified against the given
CA files (for self-signed ones, the certificate itself). Exit status 0 if
and only if every move succeeded.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from ganeti import constants
from ganeti.client.gnt_instance import ParseIdentKeyVal
from ganeti.client.gnt_node import ParseKeyVal
from ganeti.rapi import client as rapi_client

#: Seconds the server may block in one job wait (it answers earlier on news)
_WAIT_FIELDS = ["status"]


class MoveError(Exception):
    """A move failed; the message says where and why."""


# --- options ---------------------------------------------------------------------------

def BuildParser() -> argparse.ArgumentParser:
    """The command line parser."""
    parser = argparse.ArgumentParser(
        prog="move-instance",
        description="Move instances to another cluster through RAPI. Both clusters"
                    " must share the cluster domain secret.")
    parser.add_argument("src_cluster", metavar="SOURCE-CLUSTER",
                        help="RAPI host of the source cluster")
    parser.add_argument("dest_cluster", metavar="DESTINATION-CLUSTER",
                        help="RAPI host of the destination cluster")
    parser.add_argument("instances", metavar="INSTANCE", nargs="+",
                        help="Instances to move")
    for side, what in (("src", "source"), ("dest", "destination")):
        default = None if side == "dest" else constants.DEFAULT_RAPI_PORT
        parser.add_argument(f"--{side}-rapi-port", type=int, default=default,
                            help=f"RAPI port of the {what} cluster (default"
                                 f" {'the source port' if side == 'dest' else default})")
        parser.add_argument(f"--{side}-ca-file", default=None, metavar="FILE",
                            help=f"CA of the {what} cluster's RAPI certificate (PEM;"
                                 " for a self-signed certificate the certificate"
                                 " itself); without it the system's CAs"
                                 + (", or the source's CA file" if side == "dest"
                                    else ""))
        parser.add_argument(f"--{side}-username", default=None,
                            help=f"RAPI user on the {what} cluster (write access)"
                                 + ("; default: the source's" if side == "dest" else ""))
        parser.add_argument(f"--{side}-password-file", default=None, metavar="FILE",
                            help=f"File holding the {what} RAPI user's password"
                                 + ("; default: the source's" if side == "dest" else ""))
    parser.add_argument("--dest-instance-name", default=None,
                        help="Name on the destination (a single instance only)")
    parser.add_argument("--dest-primary-node", default=None,
                        help="Primary node on the destination (a single instance"
                             " only)")
    parser.add_argument("--dest-secondary-node", default=None,
                        help="Secondary node on the destination (a single instance"
                             " only)")
    parser.add_argument("-I", "--iallocator", default=None,
                        help="Allocator choosing the destination nodes")
    parser.add_argument("--hypervisor", default=None,
                        help="Hypervisor on the destination (a single instance only)")
    parser.add_argument("-H", "--hypervisor-parameters", dest="hvparams", default=None,
                        type=ParseKeyVal, metavar="PARAMS",
                        help="Hypervisor parameters overriding the source's (a single"
                             " instance only)")
    parser.add_argument("-B", "--backend-parameters", dest="beparams", default=None,
                        type=ParseKeyVal, metavar="PARAMS",
                        help="Backend parameters overriding the source's (a single"
                             " instance only)")
    parser.add_argument("-O", "--os-parameters", dest="osparams", default=None,
                        type=ParseKeyVal, metavar="PARAMS",
                        help="OS parameters (a single instance only)")
    parser.add_argument("--net", dest="nics", action="append", default=[],
                        type=ParseIdentKeyVal, metavar="N:PARAMS",
                        help="NIC parameters overriding the source's NIC N (a single"
                             " instance only; repeatable)")
    parser.add_argument("--compress", default=constants.IEC_NONE,
                        help="Compression tool for the transfer (both clusters must"
                             " support it; default none)")
    parser.add_argument("-p", "--parallel", type=int, default=1, metavar="N",
                        help="Number of moves to run at once (default 1)")
    parser.add_argument("--opportunistic-tries", type=int, default=0, metavar="N",
                        help="Try the allocation N times with opportunistic locking"
                             " first (needs an iallocator)")
    parser.add_argument("--ignore-ipolicy", action="store_true", default=False,
                        help="Ignore the destination's instance policy")
    parser.add_argument("--keep-source-instance", action="store_true", default=False,
                        help="Do not remove the source instance after the move (it"
                             " then runs on both clusters if it ran before)")
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="Print the jobs' messages")
    parser.add_argument("-d", "--debug", action="store_true", default=False,
                        help="Print debugging messages")
    return parser


def CheckOptions(parser: argparse.ArgumentParser, opts: argparse.Namespace) -> None:
    """Refuse contradicting options (parser.error exits with status 2)."""
    single = {"dest_instance_name": "--dest-instance-name",
              "dest_primary_node": "--dest-primary-node",
              "dest_secondary_node": "--dest-secondary-node",
              "hypervisor": "--hypervisor", "hvparams": "--hypervisor-parameters",
              "beparams": "--backend-parameters", "osparams": "--os-parameters",
              "nics": "--net"}
    if len(opts.instances) > 1:
        given = [flag for name, flag in single.items() if getattr(opts, name)]
        if given:
            parser.error("These options are only valid when moving a single"
                         f" instance: {', '.join(given)}")
    if opts.iallocator and (opts.dest_primary_node or opts.dest_secondary_node):
        parser.error("Give either an iallocator or destination nodes, not both")
    if opts.dest_secondary_node and not opts.dest_primary_node:
        parser.error("A destination secondary node needs a primary node")
    if opts.opportunistic_tries < 0:
        parser.error("--opportunistic-tries must not be negative")
    if opts.opportunistic_tries and not opts.iallocator:
        parser.error("Opportunistic locking needs an iallocator (--iallocator)")
    if opts.parallel < 1:
        parser.error("--parallel must be at least 1")
    for side in ("src", "dest"):
        if getattr(opts, f"{side}_username") and not getattr(opts, f"{side}_password_file") \
                and not (side == "dest" and opts.src_password_file):
            parser.error(f"--{side}-username needs --{side}-password-file")
    if opts.dest_rapi_port is None:
        opts.dest_rapi_port = opts.src_rapi_port
    for name in ("ca_file", "username", "password_file"):
        if getattr(opts, f"dest_{name}") is None:
            setattr(opts, f"dest_{name}", getattr(opts, f"src_{name}"))


# --- RAPI --------------------------------------------------------------------------------

def _ReadPassword(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fd:
            return fd.readline().rstrip("\n")
    except OSError as err:
        raise MoveError(f"Cannot read the password file {path}: {err}") from err


def MakeClient(host: str, port: int, ca_file: str | None, username: str | None,
               password_file: str | None) -> rapi_client.GanetiRapiClient:
    """A RAPI client verifying the server's certificate."""
    config = rapi_client.GenericCurlConfig(cafile=ca_file,
                                           use_curl_cabundle=ca_file is None)
    return rapi_client.GanetiRapiClient(host, port, username=username,
                                        password=_ReadPassword(password_file),
                                        curl_config_fn=config, timeout=120)


def CheckRapi(client: rapi_client.GanetiRapiClient, what: str, host: str) -> None:
    """Talk to a cluster once: a certificate that does not match the CA file
    (or no RAPI there) is refused before anything is done."""
    try:
        version = client.GetVersion()
    except rapi_client.CertificateError as err:
        raise MoveError(f"The RAPI certificate of the {what} cluster {host} does not"
                        f" match the given CA: {err}") from err
    except rapi_client.Error as err:
        raise MoveError(f"Cannot talk to the RAPI of the {what} cluster {host}:"
                        f" {err}") from err
    if version != 2:
        raise MoveError(f"The {what} cluster {host} speaks RAPI version {version},"
                        " not 2")


# --- jobs --------------------------------------------------------------------------------

def _JobError(job: dict[str, Any]) -> str:
    """The error of a failed job, as readable text."""
    texts = []
    for status, result in zip(job.get("opstatus") or [], job.get("opresult") or []):
        if status == constants.OP_STATUS_SUCCESS:
            continue
        if isinstance(result, (list, tuple)) and len(result) == 2 and \
                isinstance(result[1], (list, tuple)):
            texts.append(f"{result[0]}: " + " ".join(str(arg) for arg in result[1][:1]))
        elif result is not None:
            texts.append(str(result))
    return "; ".join(texts) or f"job status {job.get('status')}"


def _ErrorCode(job: dict[str, Any]) -> str | None:
    for result in job.get("opresult") or []:
        if isinstance(result, (list, tuple)) and len(result) == 2 and \
                isinstance(result[1], (list, tuple)) and len(result[1]) > 1:
            return str(result[1][1])
    return None


@dataclass
class _JobWatch:
    """Follows one job: status and new log entries."""
    client: rapi_client.GanetiRapiClient
    job_id: Any
    label: str
    log_fn: Any
    serial: int | None = None
    status: str | None = None
    entries: list[list[Any]] = field(default_factory=list)

    def Poll(self) -> None:
        """Wait (briefly, on the server) for news; record them."""
        answer = self.client.WaitForJobChange(self.job_id, _WAIT_FIELDS,
                                              [self.status] if self.status else None,
                                              self.serial)
        if answer is None or answer == constants.JOB_NOTCHANGED:
            return
        if isinstance(answer, dict):
            (self.status,) = answer.get("job_info") or [self.status]
            for entry in answer.get("log_entries") or []:
                self.serial = entry[0]
                self.entries.append(entry)
                if entry[2] == constants.ELOG_MESSAGE:
                    self.log_fn(f"[{self.label}] {entry[3]}")

    @property
    def finished(self) -> bool:
        return self.status in constants.JOBS_FINALIZED

    def Wait(self) -> dict[str, Any]:
        """Until the job ended; its status dict."""
        while not self.finished:
            self.Poll()
        return self.client.GetJobStatus(self.job_id)

    def RemoteImportInfo(self) -> dict[str, Any] | None:
        """The remote-import entry of the log, if it came."""
        for entry in self.entries:
            if entry[2] == constants.ELOG_REMOTE_IMPORT:
                return entry[3]
        return None


# --- one move ----------------------------------------------------------------------------

@dataclass
class Move:
    """One instance to move, with what the options say about it."""
    src_name: str
    dest_name: str
    pnode: str | None = None
    snode: str | None = None
    hypervisor: str | None = None
    hvparams: dict[str, Any] | None = None
    beparams: dict[str, Any] | None = None
    osparams: dict[str, Any] | None = None
    nics: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _Disks(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [{constants.IDISK_SIZE: size, constants.IDISK_MODE: constants.DISK_RDWR}
            for size in info.get("disk.sizes") or []]


def _Nics(info: dict[str, Any], overrides: list[tuple[str, dict[str, Any]]]
          ) -> list[dict[str, Any]]:
    columns = (("mac", "nic.macs"), ("ip", "nic.ips"), ("mode", "nic.modes"),
               ("link", "nic.links"), ("network", "nic.networks.names"),
               ("name", "nic.names"))
    count = len(info.get("nic.macs") or [])
    nics = []
    for idx in range(count):
        nic = {}
        for key, column in columns:
            values = info.get(column) or []
            if idx < len(values) and values[idx] is not None:
                nic[key] = values[idx]
        if nic.get("network"):
            # A network brings its own mode and link on the destination
            nic.pop("mode", None)
            nic.pop("link", None)
        nics.append(nic)
    for ident, params in overrides:
        try:
            idx = int(ident)
        except ValueError:
            raise MoveError(f"Invalid NIC index '{ident}' in --net") from None
        if not 0 <= idx < len(nics):
            raise MoveError(f"--net {idx}: the instance has {len(nics)} NIC(s)")
        nics[idx].update(params)
    return nics


class Mover:
    """Runs moves between one source and one destination cluster."""

    def __init__(self, opts: argparse.Namespace, src: rapi_client.GanetiRapiClient,
                 dest: rapi_client.GanetiRapiClient) -> None:
        self.opts, self.src, self.dest = opts, src, dest
        self._print_lock = threading.Lock()

    def Log(self, text: str) -> None:
        """A progress line (with --verbose)."""
        if self.opts.verbose or self.opts.debug:
            with self._print_lock:
                print(text, flush=True)

    def _Job(self, client: rapi_client.GanetiRapiClient, job_id: Any,
             label: str) -> _JobWatch:
        self.Log(f"[{label}] job {job_id}")
        return _JobWatch(client, job_id, label, self.Log)

    def _Prepare(self, move: Move) -> dict[str, Any]:
        watch = self._Job(self.src, self.src.PrepareExport(move.src_name,
                                                            constants.EXPORT_MODE_REMOTE),
                          f"{move.src_name} prepare")
        job = watch.Wait()
        if job["status"] != constants.JOB_STATUS_SUCCESS:
            raise MoveError(f"Preparing the export of {move.src_name} on the source"
                            f" failed: {_JobError(job)}")
        return job["opresult"][0]

    def _Create(self, move: Move, info: dict[str, Any], expinfo: dict[str, Any],
                opportunistic: bool) -> _JobWatch:
        opts = self.opts
        beparams = dict(info.get("custom_beparams") or {})
        beparams.update(move.beparams or {})
        hvparams = dict(info.get("custom_hvparams") or {})
        hvparams.update(move.hvparams or {})
        body: dict[str, Any] = dict(
            os=info["os"], pnode=move.pnode, snode=move.snode,
            iallocator=opts.iallocator, hypervisor=move.hypervisor or info.get("hypervisor"),
            beparams=beparams, hvparams=hvparams, osparams=move.osparams or {},
            start=info.get("admin_state") == constants.ADMINST_UP,
            name_check=False, ip_check=False, ignore_ipolicy=opts.ignore_ipolicy,
            opportunistic_locking=opportunistic, compress=opts.compress,
            source_handshake=expinfo["handshake"],
            source_x509_ca=expinfo["x509_ca"], source_instance_name=move.src_name)
        body = {key: value for key, value in body.items() if value is not None}
        job_id = self.dest.CreateInstance(constants.INSTANCE_REMOTE_IMPORT,
                                          move.dest_name, info["disk_template"],
                                          _Disks(info), _Nics(info, move.nics), **body)
        return self._Job(self.dest, job_id, f"{move.dest_name} import")

    def _ImportInfo(self, move: Move, watch: _JobWatch) -> dict[str, Any] | None:
        """Wait for the destination's remote-import entry; None when the
        job ended before it came."""
        while True:
            found = watch.RemoteImportInfo()
            if found is not None:
                return found
            if watch.finished:
                return None
            watch.Poll()

    def _StartImport(self, move: Move, info: dict[str, Any],
                     expinfo: dict[str, Any]) -> tuple[_JobWatch, dict[str, Any]]:
        tries = self.opts.opportunistic_tries
        while True:
            opportunistic = tries > 0
            watch = self._Create(move, info, expinfo, opportunistic)
            found = self._ImportInfo(move, watch)
            if found is not None:
                return watch, found
            job = watch.Wait()
            if opportunistic and _ErrorCode(job) == constants.ECODE_TEMP_NORES:
                tries -= 1
                self.Log(f"[{move.dest_name} import] not enough free resources with"
                         " opportunistic locking, trying again")
                continue
            raise MoveError(f"Creating {move.dest_name} on the destination failed:"
                            f" {_JobError(job)}")

    def Run(self, move: Move) -> None:
        """Move one instance; MoveError on failure."""
        try:
            info = self.src.GetInstance(move.src_name)
        except rapi_client.Error as err:
            raise MoveError(f"Cannot get instance {move.src_name} from the source:"
                            f" {err}") from err
        expinfo = self._Prepare(move)
        imp_watch, import_info = self._StartImport(move, info, expinfo)
        self.Log(f"[{move.src_name}] the destination listens; starting the export")
        exp_watch = self._Job(self.src, self.src.ExportInstance(
            move.src_name, constants.EXPORT_MODE_REMOTE, import_info["disks"],
            shutdown=True, remove_instance=False,
            x509_key_name=expinfo["x509_key_name"],
            destination_x509_ca=import_info["x509_ca"], compress=self.opts.compress),
            f"{move.src_name} export")
        exp_job = exp_watch.Wait()
        imp_job = imp_watch.Wait()
        problems = []
        if exp_job["status"] != constants.JOB_STATUS_SUCCESS:
            problems.append(f"the export failed: {_JobError(exp_job)}")
        else:
            result = exp_job["opresult"][0]
            disks = result[1] if isinstance(result, (list, tuple)) and len(result) == 2 \
                else []
            failed = [str(idx) for idx, ok in enumerate(disks) if not ok]
            if failed:
                problems.append(f"the export of disk(s) {', '.join(failed)} failed")
        if imp_job["status"] != constants.JOB_STATUS_SUCCESS:
            problems.append(f"the import failed: {_JobError(imp_job)}")
        if problems:
            raise MoveError(f"Moving {move.src_name} failed: {'; '.join(problems)};"
                            " the source instance was kept")
        if self.opts.keep_source_instance:
            return
        watch = self._Job(self.src, self.src.DeleteInstance(move.src_name),
                          f"{move.src_name} remove")
        job = watch.Wait()
        if job["status"] != constants.JOB_STATUS_SUCCESS:
            raise MoveError(f"{move.src_name} was moved, but removing it from the source"
                            f" failed: {_JobError(job)}")


def _Moves(opts: argparse.Namespace) -> list[Move]:
    if len(opts.instances) == 1:
        name = opts.instances[0]
        return [Move(name, opts.dest_instance_name or name, opts.dest_primary_node,
                     opts.dest_secondary_node, opts.hypervisor, opts.hvparams,
                     opts.beparams, opts.osparams, list(opts.nics))]
    return [Move(name, name) for name in opts.instances]


def Main(argv: list[str] | None = None) -> int:
    """The tool's entry point; returns the exit status."""
    parser = BuildParser()
    opts = parser.parse_args(argv)
    CheckOptions(parser, opts)
    logging.basicConfig(level=logging.DEBUG if opts.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        src = MakeClient(opts.src_cluster, opts.src_rapi_port, opts.src_ca_file,
                         opts.src_username, opts.src_password_file)
        dest = MakeClient(opts.dest_cluster, opts.dest_rapi_port, opts.dest_ca_file,
                          opts.dest_username, opts.dest_password_file)
        CheckRapi(src, "source", opts.src_cluster)
        CheckRapi(dest, "destination", opts.dest_cluster)
    except (MoveError, rapi_client.Error) as err:
        print(f"Error: {err}", file=sys.stderr)
        return constants.EXIT_FAILURE
    mover = Mover(opts, src, dest)
    moves = _Moves(opts)
    failures = 0

    def _One(move: Move) -> str | None:
        try:
            mover.Run(move)
        except (MoveError, rapi_client.Error) as err:
            return str(err)
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=opts.parallel) as pool:
        for move, error in zip(moves, pool.map(_One, moves)):
            if error is None:
                print(f"{move.src_name}: moved to {opts.dest_cluster} as {move.dest_name}")
            else:
                failures += 1
                print(f"{move.src_name}: {error}", file=sys.stderr)
    return constants.EXIT_SUCCESS if not failures else constants.EXIT_FAILURE
