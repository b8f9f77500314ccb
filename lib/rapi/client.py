"""Ganeti RAPI client: :class:`GanetiRapiClient`, with Ganeti's method names.

The transport is the standard ``http.client`` over TLS. The server's
certificate is verified when a CA file is given (``GenericCurlConfig(cafile=
...)`` as ``curl_config_fn``, or ``cafile=``); without one the connection
is encrypted but not authenticated, as with Ganeti's client. Connections are
kept alive between calls unless ``keep_alive=False`` (a new TLS connection
per request, like Ganeti's pycurl client).

Every error answer raises :class:`GanetiApiError` carrying the HTTP status
in ``code``. Write calls return the job id as the server sends it (a
number).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GANETI_RAPI_PORT = 5080
GANETI_RAPI_VERSION = 2

HTTP_DELETE = "DELETE"
HTTP_GET = "GET"
HTTP_PUT = "PUT"
HTTP_POST = "POST"
HTTP_OK = 200
HTTP_NOT_FOUND = 404
HTTP_APP_JSON = "application/json"

REPLACE_DISK_PRI = "replace_on_primary"
REPLACE_DISK_SECONDARY = "replace_on_secondary"
REPLACE_DISK_CHG = "replace_new_secondary"
REPLACE_DISK_AUTO = "replace_auto"

NODE_EVAC_PRI = "primary-only"
NODE_EVAC_SEC = "secondary-only"
NODE_EVAC_ALL = "all"

NODE_ROLE_DRAINED = "drained"
NODE_ROLE_MASTER_CANDIDATE = "master-candidate"
# Ganeti's client spells it so
NODE_ROLE_MASTER_CANDIATE = NODE_ROLE_MASTER_CANDIDATE
NODE_ROLE_MASTER = "master"
NODE_ROLE_OFFLINE = "offline"
NODE_ROLE_REGULAR = "regular"

JOB_STATUS_QUEUED = "queued"
JOB_STATUS_WAITING = "waiting"
JOB_STATUS_CANCELING = "canceling"
JOB_STATUS_RUNNING = "running"
JOB_STATUS_CANCELED = "canceled"
JOB_STATUS_SUCCESS = "success"
JOB_STATUS_ERROR = "error"
JOB_STATUS_PENDING = frozenset([JOB_STATUS_QUEUED, JOB_STATUS_WAITING,
                                JOB_STATUS_CANCELING])
JOB_STATUS_FINALIZED = frozenset([JOB_STATUS_CANCELED, JOB_STATUS_SUCCESS,
                                  JOB_STATUS_ERROR])
JOB_STATUS_ALL = frozenset([JOB_STATUS_RUNNING]) | JOB_STATUS_PENDING | \
    JOB_STATUS_FINALIZED

_REQ_DATA_VERSION_FIELD = "__version__"
_QPARAM_DRY_RUN = "dry-run"
_QPARAM_FORCE = "force"

# Feature strings
INST_CREATE_REQV1 = "instance-create-reqv1"
INST_REINSTALL_REQV1 = "instance-reinstall-reqv1"
NODE_MIGRATE_REQV1 = "node-migrate-reqv1"
NODE_EVAC_RES1 = "node-evac-res1"

_INST_NIC_PARAMS = frozenset(["mac", "ip", "mode", "link"])
_INST_CREATE_V0_DISK_PARAMS = frozenset(["size"])
_INST_CREATE_V0_PARAMS = frozenset(["os", "pnode", "snode", "iallocator",
                                    "start", "ip_check", "name_check",
                                    "hypervisor", "file_storage_dir",
                                    "file_driver", "dry_run"])

_USER_AGENT = "Ganeti RAPI Client"


class Error(Exception):
    """Base error of this module."""


class GanetiApiError(Error):
    """An error answer from the server (or a transport failure).

    ``code`` is the HTTP status, None when there was no answer.
    """

    def __init__(self, msg: str, code: int | None = None) -> None:
        Error.__init__(self, msg)
        self.code = code


class CertificateError(GanetiApiError):
    """The server's certificate could not be verified."""


@dataclass
class ConnectionOptions:
    """What a ``curl_config_fn`` may set (the names follow pycurl's ideas)."""
    cafile: str | None = None
    capath: str | None = None
    verify_hostname: bool = False
    connect_timeout: float | None = None
    timeout: float | None = None
    verbose: bool = False


def GenericCurlConfig(verbose: bool = False, use_signal: bool = False,
                      use_curl_cabundle: bool = False, cafile: str | None = None,
                      capath: str | None = None, proxy: str | None = None,
                      verify_hostname: bool = False,
                      connect_timeout: float | None = None,
                      timeout: float | None = None) -> Callable[[ConnectionOptions], None]:
    """A ``curl_config_fn`` as Ganeti's: CA file or path, timeouts.

    ``use_curl_cabundle`` trusts the system's CAs; ``proxy`` and
    ``use_signal`` are accepted for compatibility and ignored.
    """
    def _Config(opts: ConnectionOptions) -> None:
        opts.verbose = verbose
        if use_curl_cabundle and not (cafile or capath):
            opts.capath = ssl.get_default_verify_paths().capath
            opts.cafile = ssl.get_default_verify_paths().cafile
        else:
            opts.cafile = cafile
            opts.capath = capath
        opts.verify_hostname = verify_hostname
        opts.connect_timeout = connect_timeout
        opts.timeout = timeout
    _ = (use_signal, proxy)
    return _Config


def _AppendIf(container: list[Any], condition: Any, value: Any) -> Any:
    if condition:
        container.append(value)
    return condition


def _AppendDryRunIf(container: list[Any], condition: Any) -> Any:
    return _AppendIf(container, condition, (_QPARAM_DRY_RUN, 1))


def _AppendForceIf(container: list[Any], condition: Any) -> Any:
    return _AppendIf(container, condition, (_QPARAM_FORCE, 1))


def _AppendReason(container: list[Any], reason: str | None) -> Any:
    return _AppendIf(container, reason, ("reason", reason))


def _SetItemIf(container: dict[str, Any], condition: Any, item: str, value: Any) -> Any:
    if condition:
        container[item] = value
    return condition


class GanetiRapiClient:  # pylint: disable=too-many-public-methods
    """A client of one cluster's RAPI; see the module doc."""

    USER_AGENT = _USER_AGENT

    def __init__(self, host: str, port: int = GANETI_RAPI_PORT,
                 username: str | None = None, password: str | None = None,
                 logger: logging.Logger | None = None,
                 curl_config_fn: Callable[[ConnectionOptions], None] | None = None,
                 curl_factory: Any = None, keep_alive: bool = True,
                 cafile: str | None = None, timeout: float | None = 60.0) -> None:
        self._logger = logger or logging.getLogger(__name__)
        self._host = host
        self._port = port
        self._keep_alive = keep_alive
        self._opts = ConnectionOptions(cafile=cafile, timeout=timeout)
        if curl_config_fn is not None:
            curl_config_fn(self._opts)
        # Kept for signature compatibility with Ganeti's pycurl client
        self._curl_factory = curl_factory
        self._base_url = f"https://{self._FormatHost(host)}:{port}"
        self._headers = {"Accept": HTTP_APP_JSON, "Content-type": HTTP_APP_JSON,
                         "User-Agent": self.USER_AGENT}
        if username is not None:
            if password is None:
                raise Error("Password not specified")
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        elif password:
            raise Error("Specified password without username")
        self._ssl_ctx = self._MakeSslContext()
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _FormatHost(host: str) -> str:
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    def _MakeSslContext(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self._opts.cafile or self._opts.capath:
            ctx.load_verify_locations(cafile=self._opts.cafile,
                                      capath=self._opts.capath)
            ctx.check_hostname = self._opts.verify_hostname
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _NewConnection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self._host.strip("[]"), self._port, context=self._ssl_ctx,
            timeout=self._opts.timeout)

    def Close(self) -> None:
        """Close the kept-alive connection, if any."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> GanetiRapiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.Close()

    # --- transport ---------------------------------------------------------------------

    @staticmethod
    def _EncodeQuery(query: Iterable[tuple[str, Any]] | None) -> str:
        if not query:
            return ""
        pairs = []
        for name, value in query:
            if value is None:
                continue
            if isinstance(value, bool):
                value = int(value)
            elif isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            pairs.append((name, str(value)))
        return urllib.parse.urlencode(pairs)

    def _SendRequest(self, method: str, path: str,
                     query: Iterable[tuple[str, Any]] | None,
                     content: Any) -> Any:
        """Send one request; return the decoded JSON answer."""
        assert path.startswith("/")
        qs = self._EncodeQuery(query)
        url = path + (f"?{qs}" if qs else "")
        body = None if content is None else json.dumps(content).encode()
        headers = dict(self._headers)
        if not self._keep_alive:
            headers["Connection"] = "close"
        self._logger.debug("Sending request %s %s%s", method, self._base_url, url)
        with self._lock:
            status, data = self._Exchange(method, url, body, headers)
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = data.decode("utf-8", "replace")
        if status != HTTP_OK:
            if isinstance(decoded, dict) and "code" in decoded:
                msg = (f"{decoded.get('code')} {decoded.get('message')}:"
                       f" {decoded.get('explain')}")
            else:
                msg = str(decoded)
            raise GanetiApiError(msg, code=status)
        return decoded

    def _Exchange(self, method: str, url: str, body: bytes | None,
                  headers: dict[str, str]) -> tuple[int, bytes]:
        # A kept-alive connection may have been closed by the server: retry
        # once on a new one when the old one fails before any answer
        for attempt in (0, 1):
            reused = self._conn is not None
            conn = self._conn or self._NewConnection()
            self._conn = None
            try:
                conn.request(method, url, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except ssl.SSLCertVerificationError as err:
                conn.close()
                raise CertificateError(f"SSL certificate error {err}") from err
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as err:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise GanetiApiError(f"Connection to {self._base_url} failed:"
                                     f" {err}") from err
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                raise GanetiApiError(f"Connection to {self._base_url} failed:"
                                     f" {err}") from err
            if self._keep_alive and not resp.will_close:
                self._conn = conn
            else:
                conn.close()
            return resp.status, data
        raise GanetiApiError("unreachable")  # pragma: no cover

    # --- cluster -----------------------------------------------------------------------

    def GetVersion(self) -> int:
        """The RAPI version (2)."""
        return self._SendRequest(HTTP_GET, "/version", None, None)

    def GetFeatures(self) -> list[str]:
        """Optional features of the server ([] for servers predating them)."""
        try:
            return self._SendRequest(HTTP_GET, "/2/features", None, None)
        except GanetiApiError as err:
            if err.code == HTTP_NOT_FOUND:
                return []
            raise

    def GetOperatingSystems(self, reason: str | None = None) -> list[str]:
        """Names of the operating systems."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, "/2/os", query, None)

    def GetInfo(self, reason: str | None = None) -> dict[str, Any]:
        """The cluster's settings."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, "/2/info", query, None)

    def RedistributeConfig(self, reason: str | None = None) -> Any:
        """Push the configuration to all nodes; returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, "/2/redistribute-config", query, None)

    def ModifyCluster(self, reason: str | None = None, **kwargs: Any) -> Any:
        """Change cluster parameters (OpClusterSetParams); returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, "/2/modify", query, kwargs)

    def GetClusterTags(self, reason: str | None = None) -> list[str]:
        """The cluster's tags."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, "/2/tags", query, None)

    def AddClusterTags(self, tags: Sequence[str], dry_run: bool = False,
                       reason: str | None = None) -> Any:
        """Add cluster tags; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, "/2/tags", query, None)

    def DeleteClusterTags(self, tags: Sequence[str], dry_run: bool = False,
                          reason: str | None = None) -> Any:
        """Remove cluster tags; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, "/2/tags", query, None)

    # --- instances -----------------------------------------------------------------------

    @staticmethod
    def _Quote(name: Any) -> str:
        return urllib.parse.quote(str(name), safe="")

    def _Inst(self, instance: str, suffix: str = "") -> str:
        return f"/2/instances/{self._Quote(instance)}{suffix}"

    def GetInstances(self, bulk: bool = False, reason: str | None = None) -> list[Any]:
        """Instance names, or their details with ``bulk``."""
        query: list[Any] = []
        _AppendIf(query, bulk, ("bulk", 1))
        _AppendReason(query, reason)
        instances = self._SendRequest(HTTP_GET, "/2/instances", query, None)
        if bulk:
            return instances
        return [i["id"] for i in instances]

    def GetInstance(self, instance: str, reason: str | None = None) -> dict[str, Any]:
        """One instance's details."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Inst(instance), query, None)

    def GetInstanceInfo(self, instance: str, static: bool | None = None,
                        reason: str | None = None) -> Any:
        """Detailed information (a job; returns its id)."""
        query: list[Any] = []
        if static is not None:
            query.append(("static", static))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Inst(instance, "/info"), query, None)

    def CreateInstance(self, mode: str, name: str, disk_template: str,
                       disks: list[dict[str, Any]], nics: list[dict[str, Any]],
                       reason: str | None = None, **kwargs: Any) -> Any:
        """Create an instance (request version 1); returns a job id.

        Other OpInstanceCreate parameters go as keyword arguments;
        ``dry_run`` becomes the query argument.
        """
        query: list[Any] = []
        _AppendDryRunIf(query, kwargs.get("dry_run"))
        _AppendReason(query, reason)
        if INST_CREATE_REQV1 not in self.GetFeatures():
            raise GanetiApiError("Server does not support new-style (version 1)"
                                 " instance creation requests")
        body: dict[str, Any] = {_REQ_DATA_VERSION_FIELD: 1, "mode": mode,
                                "name": name, "disk_template": disk_template,
                                "disks": disks, "nics": nics}
        conflicts = set(kwargs) & set(body)
        if conflicts:
            raise GanetiApiError("Required fields can not be specified as"
                                 f" keywords: {', '.join(sorted(conflicts))}")
        body.update((key, value) for key, value in kwargs.items()
                    if key != "dry_run")
        return self._SendRequest(HTTP_POST, "/2/instances", query, body)

    def InstancesMultiAlloc(self, instances: list[dict[str, Any]],
                            reason: str | None = None, **kwargs: Any) -> Any:
        """Allocate several instances at once; returns a job id."""
        query: list[Any] = []
        body = dict(kwargs)
        body["instances"] = instances
        _AppendDryRunIf(query, body.pop("dry_run", False))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST, "/2/instances-multi-alloc", query, body)

    def DeleteInstance(self, instance: str, dry_run: bool = False,
                       reason: str | None = None, **kwargs: Any) -> Any:
        """Remove an instance; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Inst(instance), query,
                                 kwargs or None)

    def ModifyInstance(self, instance: str, reason: str | None = None,
                       **kwargs: Any) -> Any:
        """Change an instance (OpInstanceSetParams); returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/modify"), query,
                                 kwargs)

    def ActivateInstanceDisks(self, instance: str, ignore_size: bool | None = None,
                              reason: str | None = None) -> Any:
        """Activate an instance's disks; returns a job id."""
        query: list[Any] = []
        _AppendIf(query, ignore_size, ("ignore_size", 1))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/activate-disks"),
                                 query, None)

    def DeactivateInstanceDisks(self, instance: str, reason: str | None = None,
                                force: bool = False) -> Any:
        """Deactivate an instance's disks; returns a job id."""
        query: list[Any] = []
        _AppendForceIf(query, force)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/deactivate-disks"),
                                 query, None)

    def RecreateInstanceDisks(self, instance: str, disks: Any = None,
                              nodes: Any = None, reason: str | None = None,
                              iallocator: str | None = None) -> Any:
        """Recreate an instance's disks; returns a job id."""
        body: dict[str, Any] = {}
        _SetItemIf(body, disks is not None, "disks", disks)
        _SetItemIf(body, nodes is not None, "nodes", nodes)
        _SetItemIf(body, iallocator is not None, "iallocator", iallocator)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST, self._Inst(instance, "/recreate-disks"),
                                 query, body)

    def GrowInstanceDisk(self, instance: str, disk: int, amount: int,
                         wait_for_sync: bool | None = None,
                         reason: str | None = None) -> Any:
        """Grow disk ``disk`` by ``amount`` MiB; returns a job id."""
        body: dict[str, Any] = {"amount": amount}
        _SetItemIf(body, wait_for_sync is not None, "wait_for_sync", wait_for_sync)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST,
                                 self._Inst(instance, f"/disk/{self._Quote(disk)}/grow"),
                                 query, body)

    def GetInstanceTags(self, instance: str, reason: str | None = None) -> list[str]:
        """An instance's tags."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Inst(instance, "/tags"), query, None)

    def AddInstanceTags(self, instance: str, tags: Sequence[str],
                        dry_run: bool = False, reason: str | None = None) -> Any:
        """Add tags to an instance; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/tags"), query, None)

    def DeleteInstanceTags(self, instance: str, tags: Sequence[str],
                           dry_run: bool = False, reason: str | None = None) -> Any:
        """Remove tags of an instance; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Inst(instance, "/tags"), query,
                                 None)

    def RebootInstance(self, instance: str, reboot_type: str | None = None,
                       ignore_secondaries: bool | None = None, dry_run: bool = False,
                       reason: str | None = None, **kwargs: Any) -> Any:
        """Reboot an instance; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendIf(query, reboot_type, ("type", reboot_type))
        _AppendIf(query, ignore_secondaries is not None,
                  ("ignore_secondaries", ignore_secondaries))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST, self._Inst(instance, "/reboot"), query,
                                 kwargs or None)

    def ShutdownInstance(self, instance: str, dry_run: bool = False,
                         no_remember: bool = False, reason: str | None = None,
                         **kwargs: Any) -> Any:
        """Shut an instance down; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendIf(query, no_remember, ("no_remember", 1))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/shutdown"), query,
                                 kwargs or None)

    def StartupInstance(self, instance: str, dry_run: bool = False,
                        no_remember: bool = False, reason: str | None = None) -> Any:
        """Start an instance; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendIf(query, no_remember, ("no_remember", 1))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/startup"), query,
                                 None)

    def ReinstallInstance(self, instance: str, os: str | None = None,
                          no_startup: bool = False, osparams: Any = None,
                          reason: str | None = None) -> Any:
        """Reinstall an instance's OS; returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        if INST_REINSTALL_REQV1 in self.GetFeatures():
            body: dict[str, Any] = {"start": not no_startup}
            _SetItemIf(body, os is not None, "os", os)
            _SetItemIf(body, osparams is not None, "osparams", osparams)
            return self._SendRequest(HTTP_POST, self._Inst(instance, "/reinstall"),
                                     query, body)
        if osparams:
            raise GanetiApiError("Server does not support specifying OS"
                                 " parameters for instance reinstallation")
        _AppendIf(query, os, ("os", os))
        _AppendIf(query, no_startup, ("nostartup", 1))
        return self._SendRequest(HTTP_POST, self._Inst(instance, "/reinstall"),
                                 query, None)

    def ReplaceInstanceDisks(self, instance: str, disks: Sequence[int] | None = None,
                             mode: str = REPLACE_DISK_AUTO,
                             remote_node: str | None = None,
                             iallocator: str | None = None,
                             reason: str | None = None,
                             early_release: bool | None = None) -> Any:
        """Replace an instance's disks; returns a job id."""
        body: dict[str, Any] = {"mode": mode}
        _SetItemIf(body, disks is not None, "disks", list(disks or []))
        _SetItemIf(body, remote_node is not None, "remote_node", remote_node)
        _SetItemIf(body, iallocator is not None, "iallocator", iallocator)
        _SetItemIf(body, early_release is not None, "early_release", early_release)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST, self._Inst(instance, "/replace-disks"),
                                 query, body)

    def PrepareExport(self, instance: str, mode: str,
                      reason: str | None = None) -> Any:
        """Prepare an export; returns a job id."""
        query: list[Any] = [("mode", mode)]
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/prepare-export"),
                                 query, None)

    def ExportInstance(self, instance: str, mode: str, destination: Any,
                       shutdown: bool | None = None,
                       remove_instance: bool | None = None,
                       x509_key_name: Any = None, destination_x509_ca: Any = None,
                       compress: str | None = None,
                       reason: str | None = None) -> Any:
        """Export an instance; returns a job id."""
        body: dict[str, Any] = {"destination": destination, "mode": mode}
        _SetItemIf(body, shutdown is not None, "shutdown", shutdown)
        _SetItemIf(body, remove_instance is not None, "remove_instance",
                   remove_instance)
        _SetItemIf(body, x509_key_name is not None, "x509_key_name", x509_key_name)
        _SetItemIf(body, destination_x509_ca is not None, "destination_x509_ca",
                   destination_x509_ca)
        _SetItemIf(body, compress is not None, "compress", compress)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/export"), query,
                                 body)

    def MigrateInstance(self, instance: str, mode: str | None = None,
                        cleanup: bool | None = None, target_node: str | None = None,
                        reason: str | None = None) -> Any:
        """Migrate an instance; returns a job id."""
        body: dict[str, Any] = {}
        _SetItemIf(body, mode is not None, "mode", mode)
        _SetItemIf(body, cleanup is not None, "cleanup", cleanup)
        _SetItemIf(body, target_node is not None, "target_node", target_node)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/migrate"), query,
                                 body)

    def FailoverInstance(self, instance: str, iallocator: str | None = None,
                         ignore_consistency: bool | None = None,
                         target_node: str | None = None,
                         reason: str | None = None) -> Any:
        """Fail an instance over; returns a job id."""
        body: dict[str, Any] = {}
        _SetItemIf(body, iallocator is not None, "iallocator", iallocator)
        _SetItemIf(body, ignore_consistency is not None, "ignore_consistency",
                   ignore_consistency)
        _SetItemIf(body, target_node is not None, "target_node", target_node)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/failover"), query,
                                 body)

    def RenameInstance(self, instance: str, new_name: str,
                       ip_check: bool | None = None, name_check: bool | None = None,
                       reason: str | None = None) -> Any:
        """Rename an instance; returns a job id."""
        body: dict[str, Any] = {"new_name": new_name}
        _SetItemIf(body, ip_check is not None, "ip_check", ip_check)
        _SetItemIf(body, name_check is not None, "name_check", name_check)
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Inst(instance, "/rename"), query,
                                 body)

    def GetInstanceConsole(self, instance: str, reason: str | None = None) -> Any:
        """How to reach an instance's console."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Inst(instance, "/console"), query,
                                 None)

    # --- jobs ---------------------------------------------------------------------------

    def GetJobs(self, bulk: bool = False) -> list[Any]:
        """Job ids, or job details with ``bulk``."""
        query: list[Any] = []
        _AppendIf(query, bulk, ("bulk", 1))
        jobs = self._SendRequest(HTTP_GET, "/2/jobs", query, None)
        if bulk:
            return jobs
        return [int(j["id"]) for j in jobs]

    def GetJobStatus(self, job_id: Any) -> dict[str, Any]:
        """A job's fields (id, status, ops, opstatus, opresult, ...)."""
        return self._SendRequest(HTTP_GET, f"/2/jobs/{self._Quote(job_id)}", None,
                                 None)

    def WaitForJobCompletion(self, job_id: Any, period: float = 5,
                             retries: int = -1) -> bool:
        """Poll until a job ends; True if it succeeded.

        ``retries`` -1 polls for ever; otherwise False after that many
        polls without an end.
        """
        while True:
            job_result = self.GetJobStatus(job_id)
            if job_result and job_result["status"] == JOB_STATUS_SUCCESS:
                return True
            if not job_result or job_result["status"] in JOB_STATUS_FINALIZED:
                return False
            if retries == 0:
                return False
            if retries > 0:
                retries -= 1
            # Each poll is a request; the server's wait resource avoids the
            # sleep, but needs write access. It answers at once for log
            # messages newer than the given serial: give the newest seen
            serials = [entry[0] for oplog in job_result.get("oplog") or []
                       for entry in oplog or [] if entry]
            try:
                self.WaitForJobChange(job_id, ["status"], [job_result["status"]],
                                      max(serials) if serials else None)
            except GanetiApiError as err:
                if err.code not in (401, 403):
                    raise
                time.sleep(period)

    def WaitForJobChange(self, job_id: Any, fields: list[str], prev_job_info: Any,
                         prev_log_serial: Any) -> Any:
        """Wait (at most ~10 s on the server) for a job to change.

        Returns None when nothing changed, else ``{"job_info": [...],
        "log_entries": [...]}``.
        """
        body = {"fields": fields, "previous_job_info": prev_job_info,
                "previous_log_serial": prev_log_serial}
        return self._SendRequest(HTTP_GET, f"/2/jobs/{self._Quote(job_id)}/wait",
                                 None, body)

    def CancelJob(self, job_id: Any, dry_run: bool = False) -> Any:
        """Cancel a job; returns ``[success, message]``."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        return self._SendRequest(HTTP_DELETE, f"/2/jobs/{self._Quote(job_id)}",
                                 query, None)

    # --- nodes --------------------------------------------------------------------------

    def _Node(self, node: str, suffix: str = "") -> str:
        return f"/2/nodes/{self._Quote(node)}{suffix}"

    def GetNodes(self, bulk: bool = False, reason: str | None = None) -> list[Any]:
        """Node names, or their details with ``bulk``."""
        query: list[Any] = []
        _AppendIf(query, bulk, ("bulk", 1))
        _AppendReason(query, reason)
        nodes = self._SendRequest(HTTP_GET, "/2/nodes", query, None)
        if bulk:
            return nodes
        return [n["id"] for n in nodes]

    def GetNode(self, node: str, reason: str | None = None) -> dict[str, Any]:
        """One node's details."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Node(node), query, None)

    def EvacuateNode(self, node: str, iallocator: str | None = None,
                     remote_node: str | None = None, dry_run: bool = False,
                     early_release: bool | None = None, mode: str | None = None,
                     accept_old: bool = False, reason: str | None = None) -> Any:
        """Move instances off a node; returns a job id."""
        if iallocator and remote_node:
            raise GanetiApiError("Only one of iallocator or remote_node can be used")
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        body: dict[str, Any] = {"mode": mode or NODE_EVAC_SEC}
        _SetItemIf(body, iallocator is not None, "iallocator", iallocator)
        _SetItemIf(body, remote_node is not None, "remote_node", remote_node)
        _SetItemIf(body, early_release is not None, "early_release", early_release)
        _ = accept_old
        return self._SendRequest(HTTP_POST, self._Node(node, "/evacuate"), query, body)

    def MigrateNode(self, node: str, mode: str | None = None, dry_run: bool = False,
                    iallocator: str | None = None, target_node: str | None = None,
                    reason: str | None = None) -> Any:
        """Migrate a node's primary instances; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        body: dict[str, Any] = {}
        _SetItemIf(body, mode is not None, "mode", mode)
        _SetItemIf(body, iallocator is not None, "iallocator", iallocator)
        _SetItemIf(body, target_node is not None, "target_node", target_node)
        return self._SendRequest(HTTP_POST, self._Node(node, "/migrate"), query, body)

    def GetNodeRole(self, node: str, reason: str | None = None) -> str:
        """A node's role (``master``, ``master-candidate``, ``regular``...)."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Node(node, "/role"), query, None)

    def SetNodeRole(self, node: str, role: str, force: bool = False,
                    auto_promote: bool | None = None,
                    reason: str | None = None) -> Any:
        """Change a node's role; returns a job id."""
        query: list[Any] = []
        _AppendForceIf(query, force)
        _AppendIf(query, auto_promote is not None, ("auto-promote", auto_promote))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Node(node, "/role"), query, role)

    def PowercycleNode(self, node: str, force: bool = False,
                       reason: str | None = None) -> Any:
        """Power-cycle a node; returns a job id."""
        query: list[Any] = []
        _AppendForceIf(query, force)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST, self._Node(node, "/powercycle"), query,
                                 None)

    def ModifyNode(self, node: str, reason: str | None = None, **kwargs: Any) -> Any:
        """Change a node (OpNodeSetParams); returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_POST, self._Node(node, "/modify"), query, kwargs)

    def GetNodeStorageUnits(self, node: str, storage_type: str,
                            output_fields: Sequence[str],
                            reason: str | None = None) -> Any:
        """List a node's storage units (a job; returns its id)."""
        query: list[Any] = [("storage_type", storage_type),
                            ("output_fields", ",".join(output_fields))]
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Node(node, "/storage"), query, None)

    def ModifyNodeStorageUnits(self, node: str, storage_type: str, name: str,
                               allocatable: bool | None = None,
                               reason: str | None = None) -> Any:
        """Change a storage unit; returns a job id."""
        query: list[Any] = [("storage_type", storage_type), ("name", name)]
        _AppendIf(query, allocatable is not None, ("allocatable", allocatable))
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Node(node, "/storage/modify"),
                                 query, None)

    def RepairNodeStorageUnits(self, node: str, storage_type: str, name: str,
                               reason: str | None = None) -> Any:
        """Repair a storage unit; returns a job id."""
        query: list[Any] = [("storage_type", storage_type), ("name", name)]
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Node(node, "/storage/repair"),
                                 query, None)

    def GetNodeTags(self, node: str, reason: str | None = None) -> list[str]:
        """A node's tags."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Node(node, "/tags"), query, None)

    def AddNodeTags(self, node: str, tags: Sequence[str], dry_run: bool = False,
                    reason: str | None = None) -> Any:
        """Add tags to a node; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Node(node, "/tags"), query, None)

    def DeleteNodeTags(self, node: str, tags: Sequence[str], dry_run: bool = False,
                       reason: str | None = None) -> Any:
        """Remove tags of a node; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Node(node, "/tags"), query, None)

    # --- networks ---------------------------------------------------------------------

    def _Net(self, network: str, suffix: str = "") -> str:
        return f"/2/networks/{self._Quote(network)}{suffix}"

    def GetNetworks(self, bulk: bool = False, reason: str | None = None) -> list[Any]:
        """Network names, or their details with ``bulk``."""
        query: list[Any] = []
        _AppendIf(query, bulk, ("bulk", 1))
        _AppendReason(query, reason)
        networks = self._SendRequest(HTTP_GET, "/2/networks", query, None)
        if bulk:
            return networks
        return [n["name"] for n in networks]

    def GetNetwork(self, network: str, reason: str | None = None) -> dict[str, Any]:
        """One network's details."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Net(network), query, None)

    def CreateNetwork(self, network_name: str, network: str,
                      gateway: str | None = None, network6: str | None = None,
                      gateway6: str | None = None, mac_prefix: str | None = None,
                      add_reserved_ips: Any = None, tags: Any = None,
                      dry_run: bool = False, reason: str | None = None) -> Any:
        """Add a network; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        body: dict[str, Any] = {"network_name": network_name, "network": network}
        for key, value in (("gateway", gateway), ("network6", network6),
                           ("gateway6", gateway6), ("mac_prefix", mac_prefix),
                           ("add_reserved_ips", add_reserved_ips), ("tags", tags)):
            _SetItemIf(body, value is not None, key, value)
        return self._SendRequest(HTTP_POST, "/2/networks", query, body)

    def ModifyNetwork(self, network: str, reason: str | None = None,
                      **kwargs: Any) -> Any:
        """Change a network; returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Net(network, "/modify"), query, kwargs)

    def DeleteNetwork(self, network: str, dry_run: bool = False,
                      reason: str | None = None) -> Any:
        """Remove a network; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Net(network), query, None)

    def ConnectNetwork(self, network_name: str, group_name: str, mode: str,
                       link: str, vlan: str = "", dry_run: bool = False,
                       reason: str | None = None) -> Any:
        """Connect a network to a group; returns a job id."""
        body = {"group_name": group_name, "network_mode": mode,
                "network_link": link, "network_vlan": vlan}
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Net(network_name, "/connect"),
                                 query, body)

    def DisconnectNetwork(self, network_name: str, group_name: str,
                          dry_run: bool = False, reason: str | None = None) -> Any:
        """Disconnect a network from a group; returns a job id."""
        body = {"group_name": group_name}
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Net(network_name, "/disconnect"),
                                 query, body)

    def RenameNetwork(self, network: str, new_name: str,
                      reason: str | None = None) -> Any:
        """Rename a network; returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Net(network, "/rename"), query,
                                 {"new_name": new_name})

    def GetNetworkTags(self, network: str, reason: str | None = None) -> list[str]:
        """A network's tags."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Net(network, "/tags"), query, None)

    def AddNetworkTags(self, network: str, tags: Sequence[str], dry_run: bool = False,
                       reason: str | None = None) -> Any:
        """Add tags to a network; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Net(network, "/tags"), query, None)

    def DeleteNetworkTags(self, network: str, tags: Sequence[str],
                          dry_run: bool = False, reason: str | None = None) -> Any:
        """Remove tags of a network; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Net(network, "/tags"), query, None)

    # --- groups -----------------------------------------------------------------------

    def _Group(self, group: str, suffix: str = "") -> str:
        return f"/2/groups/{self._Quote(group)}{suffix}"

    def GetGroups(self, bulk: bool = False, reason: str | None = None) -> list[Any]:
        """Group names, or their details with ``bulk``."""
        query: list[Any] = []
        _AppendIf(query, bulk, ("bulk", 1))
        _AppendReason(query, reason)
        groups = self._SendRequest(HTTP_GET, "/2/groups", query, None)
        if bulk:
            return groups
        return [g["name"] for g in groups]

    def GetGroup(self, group: str, reason: str | None = None) -> dict[str, Any]:
        """One group's details."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Group(group), query, None)

    def CreateGroup(self, name: str, alloc_policy: str | None = None,
                    dry_run: bool = False, reason: str | None = None) -> Any:
        """Add a node group; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        body: dict[str, Any] = {"name": name}
        _SetItemIf(body, alloc_policy is not None, "alloc_policy", alloc_policy)
        return self._SendRequest(HTTP_POST, "/2/groups", query, body)

    def ModifyGroup(self, group: str, reason: str | None = None, **kwargs: Any) -> Any:
        """Change a group; returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Group(group, "/modify"), query, kwargs)

    def DeleteGroup(self, group: str, dry_run: bool = False,
                    reason: str | None = None) -> Any:
        """Remove a group; returns a job id."""
        query: list[Any] = []
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Group(group), query, None)

    def RenameGroup(self, group: str, new_name: str, reason: str | None = None) -> Any:
        """Rename a group; returns a job id."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Group(group, "/rename"), query,
                                 {"new_name": new_name})

    def AssignGroupNodes(self, group: str, nodes: Sequence[str], force: bool = False,
                         dry_run: bool = False, reason: str | None = None) -> Any:
        """Move nodes into a group; returns a job id."""
        query: list[Any] = []
        _AppendForceIf(query, force)
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Group(group, "/assign-nodes"), query,
                                 {"nodes": list(nodes)})

    def GetGroupTags(self, group: str, reason: str | None = None) -> list[str]:
        """A group's tags."""
        query: list[Any] = []
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_GET, self._Group(group, "/tags"), query, None)

    def AddGroupTags(self, group: str, tags: Sequence[str], dry_run: bool = False,
                     reason: str | None = None) -> Any:
        """Add tags to a group; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_PUT, self._Group(group, "/tags"), query, None)

    def DeleteGroupTags(self, group: str, tags: Sequence[str], dry_run: bool = False,
                        reason: str | None = None) -> Any:
        """Remove tags of a group; returns a job id."""
        query: list[Any] = [("tag", t) for t in tags]
        _AppendDryRunIf(query, dry_run)
        _AppendReason(query, reason)
        return self._SendRequest(HTTP_DELETE, self._Group(group, "/tags"), query, None)

    # --- query -------------------------------------------------------------------------

    def Query(self, what: str, fields: Sequence[str], qfilter: Any = None,
              reason: str | None = None) -> dict[str, Any]:
        """Query a resource (query2); returns ``{"fields": ..., "data": ...}``."""
        query: list[Any] = []
        _AppendReason(query, reason)
        body: dict[str, Any] = {"fields": list(fields)}
        _SetItemIf(body, qfilter is not None, "qfilter", qfilter)
        # Servers before Ganeti 2.7 call it "filter"
        _SetItemIf(body, qfilter is not None, "filter", qfilter)
        return self._SendRequest(HTTP_PUT, f"/2/query/{self._Quote(what)}", query, body)

    def QueryFields(self, what: str, fields: Sequence[str] | None = None,
                    reason: str | None = None) -> dict[str, Any]:
        """Describe a resource's fields."""
        query: list[Any] = []
        _AppendReason(query, reason)
        if fields is not None:
            query.append(("fields", ",".join(fields)))
        return self._SendRequest(HTTP_GET, f"/2/query/{self._Quote(what)}/fields",
                                 query, None)

