"""Simulated clusters (the htools ``--simulate`` option).

A description is ``policy,nodes,disk,memory,cpus[,spindles]``, e.g.
``preferred,20,100G,16g,4,2``: one group of identical empty nodes. Each
description makes one more group. Sizes take htools' units: none or
``m``/``g``/``t`` (and ``mib``/``gib``/``tib``, any case) are binary,
``M``/``G``/``T`` (and ``mb``/``gb``/``tb``, any case) are SI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ganeti import constants
from ganeti.htools import model
from ganeti.htools.loader_iallocator import InputError

_UNIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_POLICY_SHORT = {"p": constants.ALLOC_POLICY_PREFERRED,
                 "a": constants.ALLOC_POLICY_LAST_RESORT,
                 "u": constants.ALLOC_POLICY_UNALLOCABLE}


def parse_unit(text: str) -> int:
    """A size with an optional htools unit, in mebibytes.

    @raise InputError: for a malformed size
    """
    match = _UNIT_RE.match(text)
    if not match:
        raise InputError(f"Invalid size {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    binary = {"": 1, "m": 1, "mib": 1, "g": 1024, "gib": 1024,
              "t": 1024 * 1024, "tib": 1024 * 1024}
    si = {"M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12}
    if unit in ("", "m", "g", "t") or unit.lower() in ("mib", "gib", "tib"):
        return int(value * binary[unit.lower()])
    if unit in ("M", "G", "T") or unit.upper() in ("MB", "GB", "TB"):
        return int(value * si[unit.upper()] / (1024 * 1024))
    raise InputError(f"Invalid size {text!r}: unknown unit {unit!r}")


def build(descriptions: Sequence[str]) -> model.Cluster:
    """A cluster with one group of empty nodes per description."""
    cluster = model.Cluster()
    for gidx, desc in enumerate(descriptions, 1):
        parts = desc.split(",")
        if len(parts) not in (5, 6):
            raise InputError(f"Invalid cluster specification {desc!r}: expected"
                             " policy,nodes,disk,memory,cpus[,spindles]")
        apol = _POLICY_SHORT.get(parts[0], parts[0])
        if apol not in constants.VALID_ALLOC_POLICIES:
            raise InputError(f"Invalid allocation policy {parts[0]!r}")
        try:
            count, cpus = int(parts[1]), int(parts[4])
            spindles = int(parts[5]) if len(parts) > 5 else 1
        except ValueError as err:
            raise InputError(f"Invalid cluster specification {desc!r}: {err}") from None
        disk, mem = parse_unit(parts[2]), parse_unit(parts[3])
        uuid = f"fake-uuid-{gidx:02d}"
        cluster.add_group(model.Group(uuid, f"group-{gidx:02d}", apol))
        for nidx in range(1, count + 1):
            cluster.add_node(model.Node(
                name=f"node-{gidx:02d}-{nidx:03d}", group=uuid,
                t_mem=float(mem), f_mem=mem, t_dsk=float(disk), f_dsk=disk,
                t_cpu=float(cpus), t_spindles=spindles, f_spindles=spindles))
    return cluster
