"""The per-group state file of the watcher (``watcher.GROUP-UUID.data``).

A JSON object with Ganeti's two sections::

    {"instance": {NAME: {"restart_count": N, "restart_when": UNIX_TIME,
                         "job_id": ID}},
     "node": {NAME: {"bootid": BOOT_ID}}}

``job_id`` (ours) is the last restart job submitted for the instance, so
that a run never submits a second one while the first is still pending.
The file is written atomically (temporary file, fsync, rename). A file
that cannot be parsed, or whose contents do not have this shape, is
replaced by an empty state with a warning: the counters start again at zero
and every node counts as freshly booted, as when the file is removed by
hand (see the ganeti-watcher man page).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ganeti import utils

#: How many times an instance marked up but not running is started before
#: the watcher gives up on it (Ganeti's MAXTRIES)
MAXTRIES = 5

_KEY_INSTANCE = "instance"
_KEY_NODE = "node"
_KEY_RESTART_COUNT = "restart_count"
_KEY_RESTART_WHEN = "restart_when"
_KEY_JOB_ID = "job_id"
_KEY_BOOT_ID = "bootid"


def _ValidInstances(data: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(data, dict):
        return None
    result = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            return None
        count = entry.get(_KEY_RESTART_COUNT, 0)
        when = entry.get(_KEY_RESTART_WHEN, 0)
        job_id = entry.get(_KEY_JOB_ID)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0 or \
                isinstance(when, bool) or not isinstance(when, (int, float)) or \
                not (job_id is None or isinstance(job_id, (int, str))):
            return None
        result[name] = {_KEY_RESTART_COUNT: count, _KEY_RESTART_WHEN: when,
                        _KEY_JOB_ID: job_id}
    return result


def _ValidNodes(data: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(data, dict):
        return None
    result = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or \
                not isinstance(entry.get(_KEY_BOOT_ID), (str, type(None))):
            return None
        result[name] = {_KEY_BOOT_ID: entry.get(_KEY_BOOT_ID)}
    return result


class WatcherState:
    """Restart counters and node boot IDs of one node group."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.instances: dict[str, dict[str, Any]] = data.get(_KEY_INSTANCE, {})
        self.nodes: dict[str, dict[str, Any]] = data.get(_KEY_NODE, {})

    # --- file ----------------------------------------------------------------------------

    @classmethod
    def Parse(cls, text: str) -> WatcherState:
        """The state in ``text``.

        @raise ValueError: saying what is wrong with it
        """
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ValueError(f"not JSON ({err})") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        instances = _ValidInstances(data.get(_KEY_INSTANCE, {}))
        if instances is None:
            raise ValueError(f"invalid '{_KEY_INSTANCE}' section")
        nodes = _ValidNodes(data.get(_KEY_NODE, {}))
        if nodes is None:
            raise ValueError(f"invalid '{_KEY_NODE}' section")
        return cls({_KEY_INSTANCE: instances, _KEY_NODE: nodes})

    @classmethod
    def Load(cls, path: str) -> WatcherState:
        """The state in file ``path``; an empty one if there is none, and,
        with a warning, if it is corrupt (it is replaced at the next save)."""
        try:
            text = utils.ReadFile(path)
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as err:
            logging.warning("Cannot read the watcher state file %s (%s); starting"
                            " with an empty state", path, err)
            return cls()
        try:
            return cls.Parse(text)
        except ValueError as err:
            logging.warning("The watcher state file %s is corrupt (%s); it is"
                            " replaced by an empty state (restart counters reset)",
                            path, err)
            return cls()

    def ToDict(self) -> dict[str, Any]:
        """The state as written to the file."""
        return {_KEY_INSTANCE: self.instances, _KEY_NODE: self.nodes}

    def Save(self, path: str) -> None:
        """Write the state atomically to ``path``."""
        utils.WriteFile(path, data=json.dumps(self.ToDict(), indent=1, sort_keys=True)
                        + "\n", mode=0o600)

    # --- instances -----------------------------------------------------------------------

    def NumberOfRestartAttempts(self, name: str) -> int:
        """How many times instance ``name`` was started by the watcher since
        it was last seen running."""
        return self.instances.get(name, {}).get(_KEY_RESTART_COUNT, 0)

    def RestartJob(self, name: str) -> Any:
        """The last restart job submitted for ``name``, or None."""
        return self.instances.get(name, {}).get(_KEY_JOB_ID)

    def RecordRestartAttempt(self, name: str, job_id: Any = None,
                             now: float | None = None) -> int:
        """Count one more start of ``name`` (made by job ``job_id``); return
        the new count."""
        entry = self.instances.setdefault(name, {_KEY_RESTART_COUNT: 0})
        entry[_KEY_RESTART_COUNT] = entry.get(_KEY_RESTART_COUNT, 0) + 1
        entry[_KEY_RESTART_WHEN] = time.time() if now is None else now
        entry[_KEY_JOB_ID] = job_id
        return entry[_KEY_RESTART_COUNT]

    def RemoveInstance(self, name: str) -> None:
        """Forget ``name`` (it runs again, or is no longer to run)."""
        self.instances.pop(name, None)

    # --- nodes ---------------------------------------------------------------------------

    def GetNodeBootID(self, name: str) -> str | None:
        """The boot ID of node ``name`` at the last run, or None."""
        return self.nodes.get(name, {}).get(_KEY_BOOT_ID)

    def SetNodeBootID(self, name: str, boot_id: str) -> None:
        """Remember the boot ID of node ``name``."""
        self.nodes[name] = {_KEY_BOOT_ID: boot_id}

    def Prune(self, instances: set[str], nodes: set[str]) -> list[str]:
        """Drop the entries of instances and nodes no longer in the group
        (removed, renamed, moved); return what was dropped."""
        gone = [f"instance {name}" for name in sorted(set(self.instances) - instances)]
        gone += [f"node {name}" for name in sorted(set(self.nodes) - nodes)]
        for name in set(self.instances) - instances:
            del self.instances[name]
        for name in set(self.nodes) - nodes:
            del self.nodes[name]
        return gone
