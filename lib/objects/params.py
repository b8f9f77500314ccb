"""Parameter dicts: filling defaults, and upgrading old layouts.

Parameters are inherited cluster -> node group -> object: each level holds
only what it overrides, and the helpers here merge the levels. The
functions work on plain dicts, so the cluster, node groups and the opcode
checks all use the same rules.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from ganeti import constants
from ganeti.objects.base import FillDict

__all__ = [
    "FillDict", "FillIPolicy", "FillDiskParams", "UpgradeGroupedParams",
    "UpgradeBeParams", "UpgradeDiskParams", "MakeEmptyIPolicy",
    "CheckIPolicySyntax",
]


def FillIPolicy(default: Mapping[str, Any],
                custom: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the instance policy ``default`` overridden by ``custom``.

    The standard specs are merged key by key; the min/max specs and the
    other entries are replaced as a whole when ``custom`` has them, because
    a partial min/max pair would make no sense.
    """
    result = copy.deepcopy(dict(default))
    for key, value in (custom or {}).items():
        if key == constants.ISPECS_STD:
            result[key] = FillDict(result.get(key, {}), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def FillDiskParams(default: Mapping[str, Mapping[str, Any]],
                   custom: Mapping[str, Mapping[str, Any]] | None,
                   templates: Iterable[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Return per-template disk parameters, ``custom`` over ``default``.

    ``templates`` limits the result to those disk templates; by default it
    holds every template either side knows.
    """
    custom = custom or {}
    if templates is None:
        templates = set(default) | set(custom)
    return {dt: FillDict(default.get(dt, {}), custom.get(dt, {}))
            for dt in templates}


def UpgradeGroupedParams(target: dict[str, dict[str, Any]] | None,
                         defaults: Mapping[str, Any]
                         ) -> dict[str, dict[str, Any]]:
    """Fill every group of a grouped dict ({"default": {...}}) with defaults.

    A missing dict becomes ``{"default": defaults}``.
    """
    if not target:
        return {constants.PP_DEFAULT: copy.deepcopy(dict(defaults))}
    for group, values in target.items():
        target[group] = FillDict(defaults, values)
    return target


def UpgradeBeParams(beparams: dict[str, Any]) -> None:
    """Replace the obsolete "memory" backend parameter by minmem/maxmem.

    Explicit minmem/maxmem values win over "memory".
    """
    if constants.BE_MEMORY in beparams:
        memory = beparams.pop(constants.BE_MEMORY)
        beparams.setdefault(constants.BE_MAXMEM, memory)
        beparams.setdefault(constants.BE_MINMEM, memory)


def UpgradeDiskParams(diskparams: dict[str, dict[str, Any]] | None
                      ) -> dict[str, dict[str, Any]]:
    """Return cluster disk parameters with every template's defaults."""
    return FillDiskParams(constants.DISK_DT_DEFAULTS, diskparams,
                          set(constants.DISK_DT_DEFAULTS) |
                          set(diskparams or {}))


def MakeEmptyIPolicy() -> dict[str, Any]:
    """Return an instance policy that overrides nothing."""
    return {}


def CheckIPolicySyntax(ipolicy: Mapping[str, Any],
                       check_std: bool = True) -> list[str]:
    """Return the problems of a (filled) instance policy, empty if none.

    Checks the keys, that each min/max pair has min <= max for every spec,
    that the standard spec lies between them, the ratios are positive and
    the disk templates are known.
    """
    problems: list[str] = []
    unknown = set(ipolicy) - constants.IPOLICY_ALL_KEYS
    if unknown:
        problems.append("unknown instance policy key(s): "
                        + ", ".join(sorted(unknown)))
    minmax = ipolicy.get(constants.ISPECS_MINMAX) or []
    if not isinstance(minmax, list) or not minmax:
        problems.append("instance policy has no min/max specs")
        minmax = []
    std = ipolicy.get(constants.ISPECS_STD) or {}
    for idx, pair in enumerate(minmax):
        if not isinstance(pair, dict):
            problems.append(f"min/max spec #{idx} is not a dict")
            continue
        low = pair.get(constants.ISPECS_MIN) or {}
        high = pair.get(constants.ISPECS_MAX) or {}
        for spec in sorted(constants.ISPECS_PARAMETERS):
            if spec not in low or spec not in high:
                problems.append(f"min/max spec #{idx} lacks '{spec}'")
                continue
            if low[spec] > high[spec]:
                problems.append(
                    f"min/max spec #{idx}: minimum {spec} ({low[spec]}) is"
                    f" greater than the maximum ({high[spec]})")
            elif (check_std and len(minmax) == 1 and spec in std
                  and not low[spec] <= std[spec] <= high[spec]):
                problems.append(
                    f"standard {spec} ({std[spec]}) is not between"
                    f" {low[spec]} and {high[spec]}")
    for ratio in sorted(constants.IPOLICY_PARAMETERS):
        value = ipolicy.get(ratio)
        if value is not None and (not isinstance(value, (int, float))
                                  or value <= 0):
            problems.append(f"instance policy {ratio} must be a positive"
                            f" number, got {value!r}")
    dts = ipolicy.get(constants.IPOLICY_DTS)
    if dts is not None:
        bad = set(dts) - constants.DISK_TEMPLATES
        if bad:
            problems.append("instance policy names unknown disk template(s): "
                            + ", ".join(sorted(bad)))
    return problems
