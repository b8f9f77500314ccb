"""The node side of the watcher's cluster-wide pause.

The master writes the pause file (``watcher.pause``, the Unix time the
pause ends) on every node, so that every node's watcher sees it and a
new master after a failover still has it. The file's format is read by
:func:`ganeti.luxi.handlers.ReadWatcherPause`.
"""

from __future__ import annotations

from typing import Any

from ganeti import errors, pathutils
from ganeti.backend import Fail


def SetWatcherPause(until: Any) -> None:
    """Pause the watcher until the Unix time ``until``, or end the pause
    (None)."""
    from ganeti.luxi.handlers import WriteWatcherPause
    if until is not None and (isinstance(until, bool) or
                              not isinstance(until, (int, float))):
        Fail("Invalid watcher pause end time %r: expected a number or None", until)
    try:
        WriteWatcherPause(until, path=pathutils.WATCHER_PAUSEFILE, check_past=False)
    except (OSError, errors.GenericError) as err:
        Fail("Cannot write the watcher pause file %s: %s",
             pathutils.WATCHER_PAUSEFILE, err)
