"""Static hypervisor and disk state (``hv_state`` / ``disk_state``).

The administrator may record, per cluster, node group and node, what the
resources are (ganeti(7), "Hypervisor State Parameters" and "Disk State
Parameters"):

- hypervisor state: ``{hypervisor: {mem_total, mem_node, mem_hv,
  cpu_total, cpu_node}}``, the keys of
  :data:`constants.HVSTS_PARAMETER_TYPES`;
- disk state: ``{storage type: {name: {disk_total, disk_reserved,
  disk_overhead}}}``; the storage type is "plain" (an LVM volume group,
  named by ``name``), the only one Ganeti accepts.

Values are integers. The objects store them as ``hv_state_static`` and
``disk_state_static``; a change is merged into the stored value, and the
value "default" removes a key, as for other parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ganeti import constants, errors, ht, objects
from ganeti.cmdlib.cluster import ForceDictType, MergeParams


def _Inval(msg: str) -> errors.OpPrereqError:
    return errors.OpPrereqError(msg, errors.ECODE_INVAL)


def _CheckMapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Inval(f"The {what} must be a dictionary, got {ht.ShortRepr(value)}")
    return value


def _MergeSub(current: Mapping[str, Any] | None, changes: Any, types: Mapping[str, str],
              what: str) -> dict[str, Any]:
    merged = MergeParams(current, _CheckMapping(changes, what))
    return ForceDictType(merged, types, what)


def MergeHvState(changes: Mapping[str, Any] | None,
                 current: Mapping[str, Any] | None = None
                 ) -> dict[str, dict[str, Any]] | None:
    """``current`` hypervisor state with ``changes`` merged in, checked.

    None when there are no changes.

    @raise errors.OpPrereqError: for an unknown hypervisor or key, or a
        value that is not an integer
    """
    if not changes:
        return None
    _CheckMapping(changes, "hypervisor state")
    unknown = sorted(set(changes) - constants.HYPER_TYPES)
    if unknown:
        raise _Inval(f"Invalid hypervisor(s) in hypervisor state: {', '.join(unknown)}"
                     f" (valid: {', '.join(sorted(constants.HYPER_TYPES))})")
    result = copy.deepcopy(dict(current or {}))
    for hv_name, params in changes.items():
        result[hv_name] = _MergeSub(result.get(hv_name), params,
                                    constants.HVSTS_PARAMETER_TYPES,
                                    f"hypervisor state ({hv_name})")
    return result


def MergeDiskState(changes: Mapping[str, Any] | None,
                   current: Mapping[str, Any] | None = None
                   ) -> dict[str, dict[str, dict[str, Any]]] | None:
    """``current`` disk state with ``changes`` merged in, checked.

    None when there are no changes.

    @raise errors.OpPrereqError: for an unknown storage type or key, or a
        value that is not an integer
    """
    if not changes:
        return None
    _CheckMapping(changes, "disk state")
    unknown = sorted(set(changes) - constants.DS_VALID_TYPES)
    if unknown:
        raise _Inval(f"Invalid storage type(s) in disk state: {', '.join(unknown)}"
                     f" (valid: {', '.join(sorted(constants.DS_VALID_TYPES))})")
    result = copy.deepcopy(dict(current or {}))
    for storage_type, units in changes.items():
        per_type = dict(result.get(storage_type) or {})
        for name, params in _CheckMapping(units, f"disk state ({storage_type})").items():
            per_type[name] = _MergeSub(per_type.get(name), params,
                                       constants.DSS_PARAMETER_TYPES,
                                       f"disk state ({storage_type}/{name})")
        result[storage_type] = per_type
    return result


def InitialHvState(given: Mapping[str, Any] | None,
                   enabled_hypervisors: list[str]) -> dict[str, dict[str, Any]]:
    """The cluster's hypervisor state at init: the given one with defaults
    filled in, else the defaults for every enabled hypervisor."""
    if not given:
        return {hv_name: dict(constants.HVST_DEFAULTS) for hv_name in enabled_hypervisors}
    merged = MergeHvState(given) or {}
    return {hv_name: objects.FillDict(constants.HVST_DEFAULTS, params)
            for hv_name, params in merged.items()}


def InitialDiskState(given: Mapping[str, Any] | None
                     ) -> dict[str, dict[str, dict[str, Any]]]:
    """The cluster's disk state at init: the given one with defaults filled in."""
    merged = MergeDiskState(given) or {}
    return {storage_type: {name: objects.FillDict(constants.DS_DEFAULTS, params)
                           for name, params in units.items()}
            for storage_type, units in merged.items()}


def ParseDiskStateFlat(flat: Mapping[str, Mapping[str, Any]]
                       ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"type/name": params}`` (the command line's form) as nested dicts.

    @raise errors.OpPrereqError: for a key without "/"
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for key, params in flat.items():
        storage_type, sep, name = key.partition("/")
        if not sep or not storage_type or not name:
            raise _Inval(f"Invalid disk state '{key}': expected"
                         " storage_type/identifier:option=value,...")
        result.setdefault(storage_type, {}).setdefault(name, {}).update(params)
    return result
