"""Queries: field tables per resource, Ganeti's filter language, and the
``Query``/``QueryFields``/``QueryJobs`` answers of the master daemon.

- :mod:`.fields`: field definitions and tables, the special statuses;
- :mod:`.filter`: query-language filters compiled into predicates;
- :mod:`.engine`: :class:`FieldQuery`, the resource registry, :func:`Query`
  and :func:`QueryFields`;
- :mod:`.jobs` and :mod:`.locks`: the "job" and "lock" resources.

Later resources (cluster, node, instance, ...) register themselves with
:func:`RegisterResource` from their own module.
"""

from ganeti.query.engine import (
    RESOURCES,
    CheckFieldNames,
    FieldQuery,
    GetResource,
    Query,
    QueryFields,
    RegisterResource,
    Resource,
)
from ganeti.query.fields import (
    NODATA,
    OFFLINE,
    QFF_HOSTNAME,
    QFF_JOB_ID,
    QFF_SPLIT_TIMESTAMP,
    UNAVAIL,
    UNKNOWN,
    FieldDefinition,
    FieldStatus,
    FieldTable,
    IsSpecial,
)
from ganeti.query.filter import (
    OP_AND,
    OP_CONTAINS,
    OP_EQUAL,
    OP_EQUAL_LEGACY,
    OP_GE,
    OP_GT,
    OP_LE,
    OP_LT,
    OP_NOT,
    OP_NOT_EQUAL,
    OP_OR,
    OP_REGEXP,
    OP_TRUE,
    CompiledFilter,
    CompileFilter,
    GetRequestedNames,
    MakeSimpleFilter,
    ParseJobId,
)
from ganeti.query.jobs import (
    JOB_FIELDS,
    CalcJobPriority,
    CalcJobStatus,
    GetJobFieldValues,
    QueryJobs,
    SummarizeOp,
)
from ganeti.query.locks import LOCK_FIELDS

# Resources over the configuration register themselves on import
from ganeti.query import groups as _groups  # noqa: E402,F401
from ganeti.query import nodes as _nodes  # noqa: E402,F401
from ganeti.query import instances as _instances  # noqa: E402,F401
from ganeti.query import os as _os  # noqa: E402,F401
from ganeti.query import extstorage as _extstorage  # noqa: E402,F401
from ganeti.query import networks as _networks  # noqa: E402,F401
from ganeti.query import exports as _exports  # noqa: E402,F401

__all__ = [
    "JOB_FIELDS",
    "LOCK_FIELDS",
    "NODATA",
    "OFFLINE",
    "OP_AND",
    "OP_CONTAINS",
    "OP_EQUAL",
    "OP_EQUAL_LEGACY",
    "OP_GE",
    "OP_GT",
    "OP_LE",
    "OP_LT",
    "OP_NOT",
    "OP_NOT_EQUAL",
    "OP_OR",
    "OP_REGEXP",
    "OP_TRUE",
    "QFF_HOSTNAME",
    "QFF_JOB_ID",
    "QFF_SPLIT_TIMESTAMP",
    "RESOURCES",
    "UNAVAIL",
    "UNKNOWN",
    "CalcJobPriority",
    "CalcJobStatus",
    "CheckFieldNames",
    "CompileFilter",
    "CompiledFilter",
    "FieldDefinition",
    "FieldQuery",
    "FieldStatus",
    "FieldTable",
    "GetJobFieldValues",
    "GetRequestedNames",
    "GetResource",
    "IsSpecial",
    "MakeSimpleFilter",
    "ParseJobId",
    "Query",
    "QueryFields",
    "QueryJobs",
    "RegisterResource",
    "Resource",
    "SummarizeOp",
]
