"""Smaller objects that cross the wire: OS, storage status, consoles, queries.

None of these is stored in config.data except :class:`FilterRule` (the job
filter rules of ConfigData.filters).
"""

from __future__ import annotations

from typing import Any

from ganeti import constants, errors
from ganeti.objects.base import CHILD_LIST, ConfigObject

__all__ = [
    "FilterRule", "MasterNetworkParameters", "OS", "ExtStorage",
    "BlockDevStatus", "ImportExportStatus", "ImportExportOptions",
    "InstanceConsole", "QueryFieldDefinition", "QueryRequest", "QueryResponse",
    "QueryFieldsRequest", "QueryFieldsResponse",
]


class FilterRule(ConfigObject):
    """A job filter rule (ConfigData.filters, keyed by UUID)."""

    watermark: int
    priority: int
    predicates: list[Any]
    action: Any
    reason_trail: list[Any]
    uuid: str

    def UpgradeConfig(self) -> None:
        """Fill the empty lists."""
        if self.predicates is None:
            self.predicates = []
        if self.reason_trail is None:
            self.reason_trail = []


class MasterNetworkParameters(ConfigObject):
    """What a node needs to bring the master IP up or down."""

    uuid: str
    ip: str
    netmask: int
    netdev: str
    ip_family: int


class OS(ConfigObject):
    """An OS definition found on a node (see the OS API)."""

    name: str
    path: str
    api_versions: list[int]
    create_script: str
    create_script_untrusted: str | None
    export_script: str
    import_script: str
    rename_script: str
    verify_script: str | None
    supported_variants: list[str]
    supported_parameters: list[Any]

    VARIANT_DELIM = "+"

    @classmethod
    def SplitNameVariant(cls, name: str) -> tuple[str, str]:
        """Split "name+variant" into (name, variant); variant may be ""."""
        base, _, variant = name.partition(cls.VARIANT_DELIM)
        return base, variant

    @classmethod
    def GetName(cls, name: str) -> str:
        """Return the OS name without its variant."""
        return cls.SplitNameVariant(name)[0]

    @classmethod
    def GetVariant(cls, name: str) -> str:
        """Return the variant part of an OS name ("" if none)."""
        return cls.SplitNameVariant(name)[1]


class ExtStorage(ConfigObject):
    """An ExtStorage provider found on a node."""

    name: str
    path: str
    create_script: str
    remove_script: str
    grow_script: str
    attach_script: str
    detach_script: str
    setinfo_script: str
    verify_script: str
    snapshot_script: str | None
    open_script: str | None
    close_script: str | None
    supported_parameters: list[Any]


class BlockDevStatus(ConfigObject):
    """The state of a block device as a node reports it."""

    dev_path: str
    major: int
    minor: int
    sync_percent: float | None
    estimated_time: int | None
    is_degraded: bool
    ldisk_status: int


class ImportExportStatus(ConfigObject):
    """The state of a running import or export daemon."""

    recent_output: list[str]
    listen_port: int | None
    connected: bool
    progress_mbytes: float | None
    progress_throughput: float | None
    progress_eta: int | None
    progress_percent: int | None
    exit_status: int | None
    error_message: str | None
    ctime: float
    mtime: float


class ImportExportOptions(ConfigObject):
    """How an import or export daemon runs (import_start, export_start).

    ``key_name``: None for the node's own certificate (server.pem, key and
    certificate in one file), else a directory of ``CRYPTO_KEYS_DIR``
    holding ``key`` and ``cert``; ``ca_pem``: None to trust the node
    certificate, else the PEM text of the CA the peer's certificate must be
    signed by; ``compress``: a compression tool or "none"; ``magic``: the
    string the importer expects from its exporter (None: empty);
    ``connect_timeout``: seconds; ``listen_address`` (ours, imports only):
    the address to listen on, None for the node's secondary IP.
    """

    key_name: str | None
    ca_pem: str | None
    compress: str
    magic: str | None
    ipv6: bool
    connect_timeout: int
    listen_address: str | None

    def UpgradeConfig(self) -> None:
        """Fill the defaults of the fields that were not given."""
        if self.compress is None:
            self.compress = constants.IEC_NONE
        if self.ipv6 is None:
            self.ipv6 = False
        if self.connect_timeout is None:
            self.connect_timeout = constants.IE_CONNECT_TIMEOUT


class InstanceConsole(ConfigObject):
    """How to reach an instance's console."""

    instance: str
    kind: str
    message: str | None
    host: str | None
    port: int | None
    user: str | None
    command: list[str] | None
    display: int | None

    _REQUIRED = {
        "msg": ("message",),
        "ssh": ("host", "user", "command"),
        "vnc": ("host", "port", "display"),
        "spice": ("host", "port"),
    }

    def Validate(self) -> None:
        """Raise ConfigurationError unless the fields fit the console kind."""
        if self.kind not in constants.CONS_ALL:
            raise errors.ConfigurationError(
                f"Unknown console kind {self.kind!r}")
        if not self.instance:
            raise errors.ConfigurationError("Console lacks the instance name")
        missing = [name for name in self._REQUIRED.get(self.kind, ())
                   if getattr(self, name) is None]
        if missing:
            raise errors.ConfigurationError(
                f"A {self.kind} console needs {', '.join(missing)}")


class QueryFieldDefinition(ConfigObject):
    """A query field: name, title, kind (QFT_*) and description."""

    name: str
    title: str
    kind: str
    doc: str


class QueryRequest(ConfigObject):
    """A query: what to ask about, which fields, an optional filter."""

    what: str
    fields: list[str]
    qfilter: Any


class QueryResponse(ConfigObject):
    """A query's answer: field definitions and rows of (status, value)."""

    fields: list[QueryFieldDefinition]
    data: list[Any]

    _CHILDREN = {"fields": (CHILD_LIST, "QueryFieldDefinition")}


class QueryFieldsRequest(ConfigObject):
    """A request for the field definitions of a resource."""

    what: str
    fields: list[str] | None


class QueryFieldsResponse(ConfigObject):
    """The field definitions of a resource."""

    fields: list[QueryFieldDefinition]

    _CHILDREN = {"fields": (CHILD_LIST, "QueryFieldDefinition")}
