"""Luxi, the protocol of the master daemon's Unix sockets.

- :mod:`.protocol`: framing, requests and answers, protocol errors
- :mod:`.client`: :class:`Client`, one method per luxi call
- :mod:`.server`: the asyncio server run by ganeti-masterd
- :mod:`.handlers`: the table of luxi methods the master answers
"""

from ganeti.luxi.client import (  # noqa: F401
    DEF_CTMO,
    DEF_RWTO,
    REQ_ALL,
    REQ_ARCHIVE_JOB,
    REQ_AUTO_ARCHIVE_JOBS,
    REQ_CANCEL_JOB,
    REQ_CHANGE_JOB_PRIORITY,
    REQ_QUERY,
    REQ_QUERY_CLUSTER_INFO,
    REQ_QUERY_CONFIG_VALUES,
    REQ_QUERY_FIELDS,
    REQ_QUERY_JOBS,
    REQ_SET_DRAIN_FLAG,
    REQ_SET_WATCHER_PAUSE,
    REQ_SUBMIT_JOB,
    REQ_SUBMIT_JOB_TO_DRAINED_QUEUE,
    REQ_SUBMIT_MANY_JOBS,
    REQ_WAIT_FOR_JOB_CHANGE,
    WFJC_TIMEOUT,
    CallLuxiMethod,
    Client,
    Transport,
)
from ganeti.luxi.protocol import (  # noqa: F401
    ConnectionClosedError,
    DecodingError,
    EncodingError,
    MessageTooLarge,
    NoMasterError,
    ProtocolError,
    RequestError,
    TimeoutError,
)
