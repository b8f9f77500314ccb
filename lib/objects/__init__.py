"""Configuration objects: what config.data, RPC and luxi carry.

The classes, their names and their fields (and so the dict forms) follow
Ganeti 3.0, so that a Ganeti 3.0 config.data loads as it is. The package is
split by object; everything is exported from here, so callers write
``objects.Instance`` as in Ganeti.
"""

from ganeti.objects.base import (
    CHILD_DICT, CHILD_LIST, CHILD_ONE, ConfigObject, FillDict, GenerateUUID,
    TaggableObject,
)
from ganeti.objects.cluster import Cluster, SplitOsName
from ganeti.objects.configdata import ConfigData
from ganeti.objects.instance import NIC, Disk, Instance
from ganeti.objects.misc import (
    OS, BlockDevStatus, ExtStorage, FilterRule, ImportExportOptions,
    ImportExportStatus, InstanceConsole, MasterNetworkParameters, QueryFieldDefinition,
    QueryFieldsRequest, QueryFieldsResponse, QueryRequest, QueryResponse,
)
from ganeti.objects.networks import Network
from ganeti.objects.node import Node, NodeGroup
from ganeti.objects.params import (
    CheckIPolicySyntax, FillDiskParams, FillIPolicy, MakeEmptyIPolicy,
    UpgradeBeParams, UpgradeDiskParams, UpgradeGroupedParams,
)

__all__ = [
    "CHILD_DICT", "CHILD_LIST", "CHILD_ONE",
    "ConfigObject", "TaggableObject", "FillDict", "GenerateUUID",
    "ConfigData", "Cluster", "Node", "NodeGroup", "Instance", "NIC", "Disk",
    "Network", "FilterRule", "MasterNetworkParameters", "OS", "ExtStorage",
    "BlockDevStatus", "ImportExportStatus", "ImportExportOptions",
    "InstanceConsole", "QueryFieldDefinition", "QueryRequest", "QueryResponse",
    "QueryFieldsRequest", "QueryFieldsResponse",
    "FillIPolicy", "FillDiskParams", "UpgradeGroupedParams",
    "UpgradeBeParams", "UpgradeDiskParams", "MakeEmptyIPolicy",
    "CheckIPolicySyntax", "SplitOsName",
]
