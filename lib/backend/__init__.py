"""Node-side functions run by the node daemon for RPC calls.

One module per concern (``node``, ``verify``, ``files``, ``jobqueue``, ...);
the RPC table (:mod:`ganeti.rpc.defs`) names the function behind each call.
A function returns the call's payload, or raises :class:`RPCFail` with a
message for the master; the daemon turns that into ``[False, message]``.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn


class RPCFail(Exception):
    """The node-side function failed; the argument is the message."""


def Fail(msg: str, *args: Any, log: bool = True, exc: bool = False) -> NoReturn:
    """Log a failure and raise RPCFail with the formatted message.

    ``args`` are %-formatted into ``msg``; with ``exc`` the current
    exception's traceback is logged too.
    """
    text = msg % args if args else msg
    if log:
        if exc:
            logging.exception(text)
        else:
            logging.error(text)
    raise RPCFail(text)
