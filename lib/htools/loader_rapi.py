"""Load the cluster model from a cluster's RAPI (the htools ``-m`` option).

Reads ``/2/info``, ``/2/tags``, ``/2/groups?bulk=1``, ``/2/nodes?bulk=1``
and ``/2/instances?bulk=1``; the bulk answers carry Ganeti's query fields,
with the node and backend parameters as dicts, and are handed to the luxi
loader's :func:`~ganeti.htools.loader_luxi.build_cluster`, so both read a
cluster the same way.

The cluster is named as htools(1) says: ``host`` (port 5080),
``host:port``, ``[v6address]:port`` or ``https://host[:port]``. The
reads need no credentials unless the RAPI daemon requires authentication
for all requests; then they come from the URL (``https://user:password@
host``) or from the environment variables ``RAPI_USER`` and
``RAPI_PASSWORD`` (as a virtual cluster's env file sets them). As
Ganeti's htools, the server's certificate is not verified: the data read
is the cluster's public state.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ganeti import constants
from ganeti.htools import model
from ganeti.htools.loader_iallocator import InputError
from ganeti.htools.loader_luxi import BackendError, build_cluster

#: Environment variables giving the RAPI credentials
ENV_USER = "RAPI_USER"
ENV_PASSWORD = "RAPI_PASSWORD"

#: node parameter -> the field the luxi loader reads it as
_NDPARAMS = {constants.ND_SPINDLE_COUNT: "ndp/spindle_count",
             constants.ND_EXCLUSIVE_STORAGE: "ndp/exclusive_storage",
             constants.ND_CPU_SPEED: "ndp/cpu_speed"}
#: backend parameter -> field (with older servers' name of the memory)
_BEPARAMS = {constants.BE_MAXMEM: "be/maxmem", constants.BE_VCPUS: "be/vcpus",
             constants.BE_AUTO_BALANCE: "be/auto_balance",
             constants.BE_SPINDLE_USE: "be/spindle_use"}


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where a cluster's RAPI listens, and as whom to ask it."""

    host: str
    port: int = constants.DEFAULT_RAPI_PORT
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The base URL (without credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def parse_endpoint(spec: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of an ``-m`` argument.

    @raise InputError: for a malformed one
    """
    environ = os.environ if environ is None else environ
    text = spec.strip()
    if not text:
        raise InputError("Invalid RAPI cluster '': empty")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme != "https":
            raise InputError(f"Invalid RAPI cluster {spec!r}: only https:// URLs are"
                             " supported (the RAPI daemon speaks HTTPS only)")
    else:
        text = "https://" + text
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError as err:
        raise InputError(f"Invalid RAPI cluster {spec!r}: {err}") from None
    if not url.hostname:
        raise InputError(f"Invalid RAPI cluster {spec!r}: no host name")
    if url.path not in ("", "/") or url.query:
        raise InputError(f"Invalid RAPI cluster {spec!r}: give only the host"
                         " (and port), not a path")
    user, password = url.username, url.password
    if user is None:
        user, password = environ.get(ENV_USER) or None, environ.get(ENV_PASSWORD)
    else:
        user = urllib.parse.unquote(user)
        password = urllib.parse.unquote(password) if password is not None else None
    if user is not None and password is None:
        raise InputError(f"Invalid RAPI cluster {spec!r}: a user name without a"
                         f" password (set {ENV_PASSWORD} or give user:password@)")
    return Endpoint(url.hostname, port or constants.DEFAULT_RAPI_PORT, user, password)


def _flatten(item: Any, kind: str, params: Mapping[str, str], source: str
             ) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise InputError(f"invalid {kind} entry from RAPI: {item!r:.60}")
    rec = dict(item)
    values = rec.pop(source, None)
    if values is not None and not isinstance(values, Mapping):
        raise InputError(f"{kind} {rec.get('name')!r}: '{source}' must be a dict")
    values = values or {}
    for param, field in params.items():
        rec.setdefault(field, values.get(param))
    return rec


def node_record(item: Any) -> dict[str, Any]:
    """A ``/2/nodes?bulk=1`` entry as the luxi loader's node record."""
    rec = _flatten(item, "node", _NDPARAMS, "ndparams")
    rec.setdefault("master", rec.get("role") == constants.NR_MASTER)
    return rec


def instance_record(item: Any) -> dict[str, Any]:
    """A ``/2/instances?bulk=1`` entry as the luxi loader's instance record."""
    rec = _flatten(item, "instance", _BEPARAMS, "beparams")
    if rec.get("be/maxmem") is None and isinstance(item.get("beparams"), Mapping):
        rec["be/maxmem"] = item["beparams"].get("memory")
    return rec


def query_cluster(client: Any) -> model.Cluster:
    """The cluster model through a RAPI client (``GanetiRapiClient`` or one
    with its ``GetInfo``, ``GetClusterTags``, ``GetGroups``, ``GetNodes`` and
    ``GetInstances`` methods)."""
    info = client.GetInfo()
    if not isinstance(info, Mapping):
        raise InputError(f"invalid answer of /2/info: {info!r:.60}")
    tags = client.GetClusterTags()
    groups = client.GetGroups(bulk=True)
    nodes = client.GetNodes(bulk=True)
    instances = client.GetInstances(bulk=True)
    for what, answer in (("tags", tags), ("groups", groups), ("nodes", nodes),
                         ("instances", instances)):
        if not isinstance(answer, list):
            raise InputError(f"invalid answer of /2/{what}: expected a list,"
                             f" got {answer!r:.60}")
    return build_cluster(info, [dict(g) for g in groups if isinstance(g, Mapping)],
                         [node_record(n) for n in nodes],
                         [instance_record(i) for i in instances], tags)


def _make_client(endpoint: Endpoint) -> Any:
    from ganeti.rapi import client as rapi_client
    return rapi_client.GanetiRapiClient(endpoint.host, endpoint.port,
                                        username=endpoint.user,
                                        password=endpoint.password)


def load(spec: str, client_factory: Callable[[Endpoint], Any] | None = None,
         environ: Mapping[str, str] | None = None) -> model.Cluster:
    """The cluster model of the cluster ``spec`` names (see the module doc).

    @raise BackendError: if the RAPI cannot be reached or refuses
    @raise InputError: for a malformed ``spec`` or answers
    """
    from ganeti.rapi.client import Error as RapiError
    endpoint = parse_endpoint(spec, environ)
    client = (client_factory or _make_client)(endpoint)
    try:
        return query_cluster(client)
    except RapiError as err:
        code = getattr(err, "code", None)
        hint = ""
        if code == 401:
            hint = (f" (the RAPI requires authentication: set {ENV_USER} and"
                    f" {ENV_PASSWORD})")
        raise BackendError(f"Cannot read the cluster from RAPI at {endpoint.url}:"
                           f" {err}{hint}") from err
    finally:
        close = getattr(client, "Close", None)
        if close is not None:
            close()
