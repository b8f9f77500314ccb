"""The configuration file of an instance export (``config.ini``), in
Ganeti's format, read and written by both ends.

An export is a directory ``<export dir>/<instance name>`` on one node,
holding one dump file per exported disk and ``config.ini``, an INI file
with these sections (values are text; a missing value is written as
``None``):

``[export]``
  ``version`` (:data:`constants.EXPORT_VERSION`), ``timestamp`` (seconds
  since the epoch), ``source`` (the instance's primary node), ``os`` (the
  instance's OS, with its variant), ``compression`` (how the dumps are
  stored: ``none``; the transfer's compression is undone on arrival).
``[instance]``
  ``name``, ``maxmem``, ``minmem``, ``memory`` (= maxmem, for old
  readers), ``vcpus``, ``disk_template``, ``hypervisor``, ``tags``
  (space-separated); per NIC ``nic<i>_mac``, ``nic<i>_ip``,
  ``nic<i>_name``, ``nic<i>_network`` and the NIC parameters
  ``nic<i>_mode``, ``nic<i>_link``, ``nic<i>_vlan``, then ``nic_count``;
  per exported disk ``disk<i>_ivname``, ``disk<i>_dump`` (the dump's file
  name in the export directory), ``disk<i>_size`` (MiB), ``disk<i>_name``
  and ``disk<i>_uuid``, then ``disk_count`` (the number of disks exported:
  a disk whose export failed has no keys, its index is skipped).
``[hypervisor]``, ``[backend]``, ``[os]``, ``[os_private]``
  The instance's hypervisor (without the cluster-wide ones), backend, OS
  and private OS parameters.

:func:`Build` writes the text, :func:`Parse` reads and checks it into an
:class:`ExportInfo`; an export of a newer version than ours is refused.
"""

from __future__ import annotations

import configparser
import dataclasses
import io
import os
import time
from typing import Any

from ganeti import constants, errors

#: The name of the configuration file in an export directory
CONF_FILE = "config.ini"
#: Suffix of the directory an export is written to before it is complete
NEW_SUFFIX = ".new"

SECT_EXPORT = "export"
SECT_INSTANCE = "instance"
SECT_HYPERVISOR = "hypervisor"
SECT_BACKEND = "backend"
SECT_OS = "os"
SECT_OS_PRIVATE = "os_private"

#: The NIC parameters written per NIC (Ganeti's NICS_PARAMETER_TYPES)
_NIC_PARAMS = (constants.NIC_MODE, constants.NIC_LINK, constants.NIC_VLAN)


class ExportError(errors.GenericError):
    """An export's configuration is missing, malformed or too new."""


@dataclasses.dataclass
class ExportDisk:
    """One exported disk."""
    index: int
    size: int
    dump: str
    ivname: str | None = None
    name: str | None = None
    uuid: str | None = None


@dataclasses.dataclass
class ExportInfo:
    """What an export's ``config.ini`` says."""
    version: int
    timestamp: int
    source: str | None
    os: str | None
    compression: str
    name: str
    disk_template: str | None
    hypervisor: str | None
    tags: list[str]
    disks: list[ExportDisk]
    nics: list[dict[str, Any]]
    beparams: dict[str, str]
    hvparams: dict[str, str]
    osparams: dict[str, str]
    osparams_private: dict[str, str]


def DumpName(disk: dict[str, Any]) -> str:
    """The dump file name of a (snapshot) disk: the base name of the second
    part of its logical ID (a snapshot's LV name, a file's name)."""
    logical_id = disk.get("logical_id") or []
    if len(logical_id) < 2 or not isinstance(logical_id[1], str) or \
            not os.path.basename(logical_id[1]):
        raise ExportError(f"Disk {disk.get('iv_name') or disk.get('uuid')} has no usable"
                          f" logical ID for a dump name: {logical_id!r}")
    return os.path.basename(logical_id[1])


def _Text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if value is None:
        return "None"
    return str(value)


def _NewParser() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    return parser


def Build(instance: dict[str, Any], snap_disks: list[dict[str, Any] | None],
          source: str, timestamp: int | None = None) -> str:
    """The text of ``config.ini`` for ``instance`` (an instance dict with
    filled parameters, as node calls get it); ``snap_disks`` holds per disk
    index the disk whose dump was written (None or False: not exported)."""
    parser = _NewParser()
    parser.add_section(SECT_EXPORT)
    exp = parser[SECT_EXPORT]
    exp["version"] = str(constants.EXPORT_VERSION)
    exp["timestamp"] = str(int(time.time() if timestamp is None else timestamp))
    exp["source"] = _Text(source)
    exp["os"] = _Text(instance.get("os"))
    exp["compression"] = constants.IEC_NONE
    parser.add_section(SECT_INSTANCE)
    ins = parser[SECT_INSTANCE]
    bep = instance.get("beparams") or {}
    ins["name"] = _Text(instance.get("name"))
    ins["maxmem"] = _Text(bep.get(constants.BE_MAXMEM))
    ins["minmem"] = _Text(bep.get(constants.BE_MINMEM))
    ins["memory"] = _Text(bep.get(constants.BE_MAXMEM))
    ins["vcpus"] = _Text(bep.get(constants.BE_VCPUS))
    ins["disk_template"] = _Text(instance.get("disk_template"))
    ins["hypervisor"] = _Text(instance.get("hypervisor"))
    ins["tags"] = " ".join(instance.get("tags") or [])
    nics = instance.get("nics") or []
    for idx, nic in enumerate(nics):
        params = nic.get("nicparams") or {}
        ins[f"nic{idx}_mac"] = _Text(nic.get("mac"))
        ins[f"nic{idx}_ip"] = _Text(nic.get("ip"))
        ins[f"nic{idx}_name"] = _Text(nic.get("name"))
        ins[f"nic{idx}_network"] = _Text(nic.get("network"))
        for param in _NIC_PARAMS:
            ins[f"nic{idx}_{param}"] = _Text(params.get(param))
    ins["nic_count"] = str(len(nics))
    count = 0
    for idx, disk in enumerate(snap_disks):
        if not disk:
            continue
        count += 1
        ins[f"disk{idx}_ivname"] = _Text(disk.get("iv_name"))
        ins[f"disk{idx}_dump"] = DumpName(disk)
        ins[f"disk{idx}_size"] = str(int(disk.get("size") or 0))
        ins[f"disk{idx}_name"] = _Text(disk.get("name"))
        ins[f"disk{idx}_uuid"] = _Text(disk.get("uuid"))
    ins["disk_count"] = str(count)
    hvparams = {key: value for key, value in (instance.get("hvparams") or {}).items()
                if key not in constants.HVC_GLOBALS}
    for section, params in ((SECT_HYPERVISOR, hvparams), (SECT_BACKEND, bep),
                            (SECT_OS, instance.get("osparams") or {}),
                            (SECT_OS_PRIVATE, instance.get("osparams_private") or {})):
        parser.add_section(section)
        for key, value in sorted(params.items()):
            parser[section][key] = _Text(value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _Opt(value: str | None) -> str | None:
    """A value as written by :func:`_Text`: "None" and "" are no value."""
    if value is None or value in ("None", ""):
        return None
    return value


def _Int(section: configparser.SectionProxy, key: str, minimum: int = 0) -> int:
    text = section.get(key)
    if text is None:
        raise ExportError(f"Missing '{key}' in section [{section.name}]")
    try:
        value = int(text)
    except ValueError:
        raise ExportError(f"Invalid '{key}' in section [{section.name}]: {text!r} is not"
                          " an integer") from None
    if value < minimum:
        raise ExportError(f"Invalid '{key}' in section [{section.name}]: {value} is"
                          f" below {minimum}")
    return value


def Parse(text: str) -> ExportInfo:
    """Read ``config.ini`` text; ExportError naming what is wrong (a newer
    version than :data:`constants.EXPORT_VERSION` included)."""
    parser = _NewParser()
    try:
        parser.read_string(text)
    except configparser.Error as err:
        raise ExportError(f"Malformed export configuration: {err}".splitlines()[0]) \
            from None
    for section in (SECT_EXPORT, SECT_INSTANCE):
        if not parser.has_section(section):
            raise ExportError(f"The export configuration has no [{section}] section")
    exp, ins = parser[SECT_EXPORT], parser[SECT_INSTANCE]
    version = _Int(exp, "version")
    if version > constants.EXPORT_VERSION:
        raise ExportError(f"The export has version {version}, newer than this version's"
                          f" {constants.EXPORT_VERSION}: it cannot be read")
    if version != constants.EXPORT_VERSION:
        raise ExportError(f"Wrong export version {version} (wanted"
                          f" {constants.EXPORT_VERSION})")
    # No OS: the dumps are raw disk images
    os_name = _Opt(exp.get("os"))
    name = _Opt(ins.get("name"))
    if not name:
        raise ExportError("The export configuration names no instance ([instance] name)")
    compression = exp.get("compression") or constants.IEC_NONE
    if compression != constants.IEC_NONE:
        raise ExportError(f"Exports stored with compression '{compression}' are not"
                          " supported")
    disks = []
    for idx in range(constants.MAX_DISKS):
        if not ins.get(f"disk{idx}_size") and not ins.get(f"disk{idx}_dump"):
            continue
        dump = _Opt(ins.get(f"disk{idx}_dump"))
        if not dump or os.path.basename(dump) != dump or dump in (".", ".."):
            raise ExportError(f"Invalid dump file name {dump!r} of disk {idx}")
        disks.append(ExportDisk(index=idx, size=_Int(ins, f"disk{idx}_size", 1),
                                dump=dump, ivname=_Opt(ins.get(f"disk{idx}_ivname")),
                                name=_Opt(ins.get(f"disk{idx}_name")),
                                uuid=_Opt(ins.get(f"disk{idx}_uuid"))))
    if "disk_count" in ins and _Int(ins, "disk_count") != len(disks):
        raise ExportError(f"The export lists {len(disks)} disk(s) but says disk_count"
                          f" is {ins['disk_count']}")
    nics = []
    for idx in range(constants.MAX_NICS):
        if f"nic{idx}_mac" not in ins:
            break
        nic: dict[str, Any] = {}
        for key in (constants.INIC_MAC, constants.INIC_IP, constants.INIC_NAME,
                    constants.INIC_NETWORK) + _NIC_PARAMS:
            value = _Opt(ins.get(f"nic{idx}_{key}"))
            if value is not None:
                nic[key] = value
        nics.append(nic)
    if "nic_count" in ins and _Int(ins, "nic_count") != len(nics):
        raise ExportError(f"The export lists {len(nics)} NIC(s) but says nic_count is"
                          f" {ins['nic_count']}")

    def _Section(section: str) -> dict[str, str]:
        if not parser.has_section(section):
            return {}
        return dict(parser[section].items())

    beparams = _Section(SECT_BACKEND)
    if not beparams:
        # Old exports: the memory and vcpus in the [instance] section
        for key in (constants.BE_MAXMEM, constants.BE_MINMEM, constants.BE_VCPUS):
            if _Opt(ins.get(key)):
                beparams[key] = ins[key]
        if constants.BE_MAXMEM not in beparams and _Opt(ins.get(constants.BE_MEMORY)):
            beparams[constants.BE_MAXMEM] = ins[constants.BE_MEMORY]
    if constants.BE_MEMORY in beparams:
        memory = beparams.pop(constants.BE_MEMORY)
        beparams.setdefault(constants.BE_MAXMEM, memory)
        beparams.setdefault(constants.BE_MINMEM, memory)
    timestamp = _Int(exp, "timestamp") if "timestamp" in exp else 0
    return ExportInfo(
        version=version, timestamp=timestamp, source=_Opt(exp.get("source")),
        os=os_name, compression=compression, name=name,
        disk_template=_Opt(ins.get("disk_template")),
        hypervisor=_Opt(ins.get("hypervisor")),
        tags=(ins.get("tags") or "").split(), disks=disks, nics=nics,
        beparams=beparams, hvparams=_Section(SECT_HYPERVISOR),
        osparams=_Section(SECT_OS), osparams_private=_Section(SECT_OS_PRIVATE))
