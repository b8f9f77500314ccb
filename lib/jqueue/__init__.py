"""The job queue of the master daemon.

- :mod:`.job`: jobs and opcodes in memory and their job-file dicts;
- :mod:`.storage`: job files, the serial file, the archive, the drain flag;
- :mod:`.processor`: running one job's opcodes through mcpu;
- :mod:`.deps`: job dependencies;
- :mod:`.queue`: :class:`JobQueue`, tying them together.

The interface the rest of the master uses is described in
doc/design-masterd.rst.
"""

from ganeti.jqueue.job import CalcJobStatus, QueuedJob, QueuedOpCode, TimeStampNow
from ganeti.jqueue.processor import CANCEL_MESSAGE, EncodeOpError
from ganeti.jqueue.queue import UNCLEAN_SHUTDOWN_MESSAGE, JobQueue, JobQueueContext

__all__ = [
    "CANCEL_MESSAGE",
    "UNCLEAN_SHUTDOWN_MESSAGE",
    "CalcJobStatus",
    "EncodeOpError",
    "JobQueue",
    "JobQueueContext",
    "QueuedJob",
    "QueuedOpCode",
    "TimeStampNow",
]
