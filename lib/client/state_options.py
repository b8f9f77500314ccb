"""``--hypervisor-state`` and ``--disk-state``, shared by gnt-cluster,
gnt-node and gnt-group (their syntax is ganeti(7)'s):

- ``--hypervisor-state HV:mem_total=N,cpu_total=N,...`` (repeatable);
- ``--disk-state STORAGE_TYPE/NAME:disk_total=N,...`` (repeatable), e.g.
  ``plain/xenvg:disk_reserved=1024``.

The command line only splits the text; the opcodes' logical units check
the hypervisors, storage types, keys and values
(:mod:`ganeti.cmdlib.resource_state`), so RAPI gets the same checks.
"""

from __future__ import annotations

import argparse
from typing import Any

from ganeti.cli import cli_option


def _ParseKeyVal(text: str) -> dict[str, Any]:
    # imported late: gnt-cluster and gnt-node import this module
    from ganeti.client.gnt_cluster import ParseKeyVal
    return ParseKeyVal(text)


def ParseHvState(text: str) -> tuple[str, dict[str, Any]]:
    """``hypervisor:key=value,...`` as (hypervisor, params)."""
    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"invalid value '{text}': expected hypervisor:option=value,...")
    return name, _ParseKeyVal(rest)


def ParseDiskState(text: str) -> tuple[tuple[str, str], dict[str, Any]]:
    """``storage_type/name:key=value,...`` as ((storage type, name), params)."""
    ident, sep, rest = text.partition(":")
    storage_type, slash, name = ident.partition("/")
    if not sep or not slash or not storage_type or not name:
        raise argparse.ArgumentTypeError(
            f"invalid value '{text}': expected storage_type/identifier:option=value,...")
    return (storage_type, name), _ParseKeyVal(rest)


def Grouped(values: list[tuple[str, dict[str, Any]]] | None
            ) -> dict[str, dict[str, Any]] | None:
    """The values of a repeated ``name:key=value,...`` option as one dict
    (None: none given): ``--hypervisor-state``, gnt-group's ``-D``."""
    if not values:
        return None
    result: dict[str, dict[str, Any]] = {}
    for name, params in values:
        result.setdefault(name, {}).update(params)
    return result


#: The repeated ``--hypervisor-state`` values as one dict
HvStateFromOpts = Grouped


def DiskStateFromOpts(values: list[tuple[tuple[str, str], dict[str, Any]]] | None
                      ) -> dict[str, dict[str, dict[str, Any]]] | None:
    """The repeated ``--disk-state`` values as ``{type: {name: params}}``."""
    if not values:
        return None
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for (storage_type, name), params in values:
        result.setdefault(storage_type, {}).setdefault(name, {}).update(params)
    return result


HV_STATE_OPT = cli_option(
    "--hypervisor-state", dest="hv_state", default=None, action="append",
    type=ParseHvState, metavar="HV:OPTION=VALUE,...",
    help="Static hypervisor state: mem_total, mem_node, mem_hv, cpu_total,"
    " cpu_node (may be repeated)")
DISK_STATE_OPT = cli_option(
    "--disk-state", dest="disk_state", default=None, action="append",
    type=ParseDiskState, metavar="STORAGE_TYPE/NAME:OPTION=VALUE,...",
    help="Static disk state, e.g. plain/xenvg:disk_total=N: disk_total,"
    " disk_reserved, disk_overhead (may be repeated)")
