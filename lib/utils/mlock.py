"""Locking a process's memory in RAM (``mlockall``).

The node daemon keeps itself in memory so that it can still serve (e.g. a
power-cycle request) when the node's disks fail and pages could not be
read back from swap or from the program files.

On Linux, memory locks are not inherited by a child created with
``fork()``, and neither is ``MCL_FUTURE``: a forked child that must stay
in memory calls :func:`Mlockall` itself (:mod:`ganeti.http.forking`,
``child_init``), best with ``onfault``, since the pages it shares with a
locked parent are resident already and locking them in full would copy
every one of them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4

_libc: ctypes.CDLL | None = None


def _GetLibc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                            use_errno=True)
    return _libc


def Mlockall(future: bool = True, onfault: bool = False) -> bool:
    """Lock all current (and, with ``future``, later) pages in memory.

    With ``onfault`` pages are locked when first touched rather than all at
    once, which is much cheaper for a freshly forked child. Returns whether
    it worked; a failure (no privilege, limit too low) is logged, not raised.
    """
    flags = MCL_CURRENT | (MCL_FUTURE if future else 0) | (MCL_ONFAULT if onfault else 0)
    try:
        libc = _GetLibc()
    except OSError as err:
        logging.warning("Cannot lock memory, libc not loadable: %s", err)
        return False
    if libc.mlockall(flags) != 0:
        errno_value = ctypes.get_errno()
        logging.warning("Cannot lock memory (mlockall): %s", os.strerror(errno_value))
        return False
    return True


def Munlockall() -> bool:
    """Undo :func:`Mlockall`; return whether it worked."""
    try:
        return _GetLibc().munlockall() == 0
    except OSError:
        return False
