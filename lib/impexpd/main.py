"""The ``ganeti-impexpd`` program: options, logging, pid file, signals.

The node daemon starts it with standard output and error going to the
transfer's log file; log messages go to standard error. Exit codes: 0 for
a complete transfer, 1 for a failed or aborted one (the status file says
why), 2 for a bad command line (before any status is written).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from ganeti import errors, utils
from ganeti.impexpd import options
from ganeti.impexpd.status import StatusFile
from ganeti.impexpd.transfer import Transfer

_LOG_FORMAT = "%(asctime)s: ganeti-impexpd pid=%(process)d %(levelname)s %(message)s"


def Main(argv: Sequence[str] | None = None) -> int:
    """Run one transfer as the command line says; return the exit code."""
    opts = options.ParseOptions(argv)
    logging.basicConfig(stream=sys.stderr, format=_LOG_FORMAT,
                        level=logging.DEBUG if opts.debug else logging.INFO)
    status = StatusFile(opts.status_file)
    transfer = Transfer(opts, status)

    def _Abort(signum: int, _frame: FrameType | None) -> None:
        transfer.Abort()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _Abort)

    if opts.pid_file:
        try:
            # The descriptor stays open, and so locked, until we exit: the lock
            # tells the node daemon we run
            utils.WritePidFile(opts.pid_file)
        except (OSError, errors.PidFileLockError) as err:
            logging.error("Cannot write the pid file %s: %s", opts.pid_file, err)
            return 1
    logging.info("Starting the %s of %s", opts.mode, opts.data.value)
    status.Write(force=True)
    return transfer.Run()
