"""Loading, saving and locking of the configuration file.

The configuration lives in memory as one objects.ConfigData behind a
re-entrant lock. Every change is written at once: the serial number of the
configuration goes up, the JSON form (made by a
:class:`ganeti.config.serialize.ConfigSerializer`, which reuses the text of
unchanged instances and disks) is written to a temporary file that is
fsynced and renamed over config.data (utils.WriteFile), and the save
listeners are told (the master pushes the file to the candidates from
there).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ganeti import constants, errors, objects, pathutils, serializer, utils
from ganeti.config.serialize import ConfigSerializer
from ganeti.config.verify import VerifyConfigData

__all__ = ["ConfigBase", "Locked", "InitConfig", "LoadConfigData",
           "SplitVersion"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Called after each save with the new serial number and the file's text
SaveListener = Callable[[int, str], None]


def Locked(fn: _F) -> _F:
    """Run a ConfigWriter method with the configuration lock held."""
    @functools.wraps(fn)
    def wrapper(self: ConfigBase, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)
    return cast(_F, wrapper)


def SplitVersion(version: int) -> tuple[int, int, int]:
    """Split a configuration version into (major, minor, revision)."""
    return (version // 1000000, (version // 10000) % 100, version % 10000)


def _DefaultConfigFile() -> str:
    return pathutils.CLUSTER_CONF_FILE


def _MyHostname() -> str:
    """Return this node's name (GANETI_HOSTNAME wins, for virtual clusters)."""
    return utils.Hostname.GetSysName()


def LoadConfigData(path: str) -> objects.ConfigData:
    """Read, check and upgrade the configuration file ``path``.

    Raises ConfigurationError naming the file when it cannot be read, is not
    JSON, or does not have the shape of a configuration, and
    ConfigVersionMismatch(expected, found) when it was written by a version
    with another major or minor number.
    """
    try:
        text = utils.ReadFile(path)
    except OSError as err:
        raise errors.ConfigurationError(
            f"Cannot read configuration file {path}: {err.strerror or err}"
        ) from err
    except UnicodeDecodeError as err:
        raise errors.ConfigurationError(
            f"Configuration file {path} is not UTF-8 text: {err}") from err
    if not text.strip():
        raise errors.ConfigurationError(f"Configuration file {path} is empty")
    try:
        raw = serializer.LoadJson(text)
    except (errors.ParseError, ValueError) as err:
        raise errors.ConfigurationError(
            f"Configuration file {path} is not valid JSON (corrupt or"
            f" truncated?): {err}") from err
    if not isinstance(raw, dict):
        raise errors.ConfigurationError(
            f"Configuration file {path} does not hold a JSON object but a"
            f" {type(raw).__name__}")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise errors.ConfigurationError(
            f"Configuration file {path} has no valid version"
            f" (found {version!r})")
    if SplitVersion(version)[:2] != \
            SplitVersion(constants.CONFIG_VERSION)[:2]:
        raise errors.ConfigVersionMismatch(constants.CONFIG_VERSION, version)
    for key in ("cluster", "nodes", "instances"):
        if not isinstance(raw.get(key), dict):
            raise errors.ConfigurationError(
                f"Configuration file {path} lacks the '{key}' object")
    try:
        data = objects.ConfigData.FromDict(raw)
        data.UpgradeConfig()
    except errors.ConfigurationError as err:
        raise errors.ConfigurationError(
            f"Configuration file {path} is invalid: {err}") from err
    except (TypeError, ValueError, KeyError, AttributeError,
            IndexError) as err:
        raise errors.ConfigurationError(
            f"Configuration file {path} has an invalid structure:"
            f" {type(err).__name__}: {err}") from err
    if data.version < constants.CONFIG_VERSION:
        data.version = constants.CONFIG_VERSION
    return data


def WriteConfigData(data: objects.ConfigData, path: str,
                    save_fn: Callable[[str, str], None] | None = None,
                    dump_fn: Callable[[objects.ConfigData], str] | None = None
                    ) -> str:
    """Write ``data`` atomically to ``path`` (mode 0600); return the text.

    ``dump_fn`` makes the text (default: DumpJson of its dict form; the
    ConfigWriter uses a ConfigSerializer). A failed write leaves the old
    file as it was and raises ConfigurationError naming the file.
    """
    text = dump_fn(data) if dump_fn is not None \
        else serializer.DumpJson(data.ToDict())
    try:
        if save_fn is not None:
            save_fn(path, text)
        else:
            uid, gid = ConfigFileOwner()
            utils.WriteFile(path, data=text, mode=constants.CLUSTER_CONF_FILE_MODE,
                            uid=uid, gid=gid)
    except (OSError, errors.GenericError) as err:
        raise errors.ConfigurationError(
            f"Cannot write configuration file {path}: {err}") from err
    return text


def ConfigFileOwner() -> tuple[int, int]:
    """(uid, gid) to give config.data: the master daemon's user and confd's
    group under privilege separation (the master daemon is a member of that
    group, so it may give its files to it), else -1 (left as created)."""
    from ganeti import runtime
    if os.geteuid() == 0:
        return runtime.FileOwnerIds("masterd", "confd")
    if runtime.Mode() != runtime.MODE_SEPARATE or not runtime.RunsAs(constants.MASTERD):
        return -1, -1
    # The master daemon itself: it may give the file to a group it is in
    return -1, runtime.GetEnts().confd_gid


def InitConfig(version: int, cluster_config: objects.Cluster,
               master_node_config: objects.Node,
               cfg_file: str | None = None) -> objects.ConfigData:
    """Write the configuration of a brand-new cluster; return it.

    Creates the default node group holding the master node, makes the
    master a master candidate and fills every default.
    """
    if cfg_file is None:
        cfg_file = _DefaultConfigFile()
    now = time.time()
    group = objects.NodeGroup(name=constants.INITIAL_NODE_GROUP_NAME,
                              uuid=objects.GenerateUUID(), ctime=now,
                              mtime=now, serial_no=1)
    group.UpgradeConfig()
    master = master_node_config
    if master.uuid is None:
        master.uuid = objects.GenerateUUID()
    master.group = group.uuid
    master.master_candidate = True
    master.offline = False
    master.drained = False
    master.master_capable = True
    master.serial_no = 1
    master.ctime = master.mtime = now
    group.members = [master.uuid]
    cluster = cluster_config
    cluster.master_node = master.uuid
    cluster.serial_no = 1
    cluster.ctime = cluster.mtime = now
    data = objects.ConfigData(
        version=version, cluster=cluster, nodes={master.uuid: master},
        nodegroups={group.uuid: group}, instances={}, networks={}, disks={},
        filters={}, serial_no=1, ctime=now, mtime=now)
    data.UpgradeConfig()
    WriteConfigData(data, cfg_file)
    return data


class ConfigBase:
    """The configuration in memory, its lock, and its file."""

    def __init__(self, cfg_file: str | None = None, offline: bool = False,
                 accept_foreign: bool = False,
                 _save_fn: Callable[[str, str], None] | None = None) -> None:
        self._lock = threading.RLock()
        self._cfg_file = cfg_file if cfg_file is not None \
            else _DefaultConfigFile()
        self._offline = offline
        self._save_fn = _save_fn
        self._listeners: list[SaveListener] = []
        self._serializer = ConfigSerializer()
        self._config_data = LoadConfigData(self._cfg_file)
        self._CheckForeign(accept_foreign)

    def _CheckForeign(self, accept_foreign: bool) -> None:
        """Refuse a configuration whose master is another node."""
        data = self._config_data
        master = data.nodes.get(data.cluster.master_node)
        if master is None:
            raise errors.ConfigurationError(
                f"Configuration file {self._cfg_file} names unknown master"
                f" node '{data.cluster.master_node}'")
        if accept_foreign:
            return
        my_name = _MyHostname()
        if master.name.lower() != my_name.lower():
            raise errors.ConfigurationError(
                f"The configuration file {self._cfg_file} lists master node"
                f" {master.name}, but this node is {my_name}")

    @property
    def cfg_file(self) -> str:
        """The path of the configuration file."""
        return self._cfg_file

    def AddSaveListener(self, fn: SaveListener) -> None:
        """Call ``fn(serial_no, text)`` after every successful save.

        Listeners run with the configuration lock held, in save order, and
        should only hand the work on (e.g. queue an upload to the master
        candidates). They are not called in offline mode.
        """
        with self._lock:
            self._listeners.append(fn)

    def _WriteConfig(self, feedback_fn: Callable[[str], None] | None = None
                     ) -> None:
        """Bump the serial number, check, write the file, tell listeners.

        Consistency problems are logged (and given to ``feedback_fn``) but
        do not stop the write: refusing would lose the change in memory's
        only copy. A failed write raises ConfigurationError; the file keeps
        its previous content, memory keeps the change.
        """
        data = self._config_data
        problems = VerifyConfigData(data)
        if problems:
            msg = ("Configuration data is not consistent: "
                   + "; ".join(problems))
            logging.error(msg)
            if feedback_fn is not None:
                feedback_fn(msg)
        data.BumpSerial()
        text = WriteConfigData(data, self._cfg_file, self._save_fn,
                               self._serializer.Dump)
        if not self._offline:
            for listener in list(self._listeners):
                listener(data.serial_no, text)

    @Locked
    def WriteConfig(self, feedback_fn: Callable[[str], None] | None = None
                    ) -> None:
        """Save the configuration now (it is saved after each change)."""
        self._WriteConfig(feedback_fn)
