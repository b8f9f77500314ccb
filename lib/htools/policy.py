"""Instance policies: specs, allowed disk templates and ratios.

A group's instance policy (``ipolicy``) bounds the instances it may hold:
each instance spec (memory, CPU count, disk count and sizes, NIC count,
spindle use) must lie within one of the ``minmax`` ranges, the disk
template must be listed in ``disk-templates``, and the nodes may hand out
at most ``vcpu-ratio`` virtual CPUs per physical CPU and ``spindle-ratio``
units of spindle use per spindle. The ``std`` spec is the default instance
size (hspace's starting point).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ganeti import constants

#: The spec fields in htools' text order (memory, cpu, disk size, disk
#: count, nic count, spindle use) with their ipolicy keys
SPEC_KEYS = (constants.ISPEC_MEM_SIZE, constants.ISPEC_CPU_COUNT,
             constants.ISPEC_DISK_SIZE, constants.ISPEC_DISK_COUNT,
             constants.ISPEC_NIC_COUNT, constants.ISPEC_SPINDLE_USE)


class PolicyError(ValueError):
    """A malformed instance policy."""


@dataclasses.dataclass(frozen=True)
class ISpec:
    """One instance spec (a minimum, maximum or standard size)."""

    memory_size: int
    cpu_count: int
    disk_size: int
    disk_count: int
    nic_count: int
    spindle_use: int

    def values(self) -> tuple[int, ...]:
        """The values in htools' text order (see SPEC_KEYS)."""
        return (self.memory_size, self.cpu_count, self.disk_size,
                self.disk_count, self.nic_count, self.spindle_use)

    def to_dict(self) -> dict[str, int]:
        """The spec as an ipolicy dict (``{"memory-size": ..., ...}``)."""
        return dict(zip(SPEC_KEYS, self.values()))

    @classmethod
    def from_values(cls, values: Sequence[int]) -> ISpec:
        """Build a spec from values in text order; spindle use defaults to 1."""
        vals = list(values) + [1] * (6 - len(values))
        return cls(*vals[:6])


def _spec_from_dict(data: Any, default: ISpec, where: str) -> ISpec:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where} must be a dict, got {data!r}")
    vals = []
    for key, dflt in zip(SPEC_KEYS, default.values()):
        val = data.get(key, dflt)
        if isinstance(val, bool) or not isinstance(val, int) or val < 0:
            raise PolicyError(f"{where}: '{key}' must be a non-negative"
                              f" integer, got {val!r}")
        vals.append(val)
    return ISpec(*vals)


def _default_spec(name: str) -> ISpec:
    minmax = constants.IPOLICY_DEFAULTS[constants.ISPECS_MINMAX]
    if name == constants.ISPECS_STD:
        src = constants.IPOLICY_DEFAULTS[constants.ISPECS_STD]
    else:
        src = minmax[0][name]  # type: ignore[index]
    return ISpec(*(src[key] for key in SPEC_KEYS))  # type: ignore[index]


DEFAULT_MIN = _default_spec(constants.ISPECS_MIN)
DEFAULT_MAX = _default_spec(constants.ISPECS_MAX)
DEFAULT_STD = _default_spec(constants.ISPECS_STD)


@dataclasses.dataclass
class IPolicy:
    """An instance policy as htools uses it."""

    minmax: list[tuple[ISpec, ISpec]]
    std: ISpec
    disk_templates: tuple[str, ...]
    vcpu_ratio: float
    spindle_ratio: float
    memory_ratio: float = 1.0

    @classmethod
    def default(cls) -> IPolicy:
        """Ganeti's default policy."""
        defaults: dict[str, Any] = constants.IPOLICY_DEFAULTS
        return cls([(DEFAULT_MIN, DEFAULT_MAX)], DEFAULT_STD,
                   tuple(defaults[constants.IPOLICY_DTS]),
                   float(defaults[constants.IPOLICY_VCPU_RATIO]),
                   float(defaults[constants.IPOLICY_SPINDLE_RATIO]))

    @classmethod
    def from_dict(cls, data: Any, base: IPolicy | None = None,
                  where: str = "ipolicy") -> IPolicy:
        """Parse an ipolicy dict as the iallocator input carries it.

        Keys missing from ``data`` are taken from ``base`` (the cluster
        policy for a group), then from Ganeti's defaults.

        @raise PolicyError: naming the bad key
        """
        base = base or cls.default()
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where} must be a dict, got {data!r}")
        minmax = base.minmax
        if constants.ISPECS_MINMAX in data:
            raw = data[constants.ISPECS_MINMAX]
            if not isinstance(raw, list) or not raw:
                raise PolicyError(f"{where}: 'minmax' must be a non-empty list")
            minmax = []
            for idx, pair in enumerate(raw):
                loc = f"{where}: minmax[{idx}]"
                if not isinstance(pair, Mapping):
                    raise PolicyError(f"{loc} must be a dict with 'min' and 'max'")
                lo = _spec_from_dict(pair.get(constants.ISPECS_MIN), DEFAULT_MIN,
                                     loc + " min")
                hi = _spec_from_dict(pair.get(constants.ISPECS_MAX), DEFAULT_MAX,
                                     loc + " max")
                minmax.append((lo, hi))
        std = base.std
        if constants.ISPECS_STD in data:
            std = _spec_from_dict(data[constants.ISPECS_STD], base.std, where + " std")
        dts = data.get(constants.IPOLICY_DTS, list(base.disk_templates))
        if not isinstance(dts, list) or not all(isinstance(x, str) for x in dts):
            raise PolicyError(f"{where}: 'disk-templates' must be a list of strings")
        ratios = []
        for key, dflt in ((constants.IPOLICY_VCPU_RATIO, base.vcpu_ratio),
                          (constants.IPOLICY_SPINDLE_RATIO, base.spindle_ratio),
                          (constants.IPOLICY_MEMORY_RATIO, base.memory_ratio)):
            val = data.get(key, dflt)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or val <= 0:
                raise PolicyError(f"{where}: '{key}' must be a positive number,"
                                  f" got {val!r}")
            ratios.append(float(val))
        return cls(minmax, std, tuple(dts), ratios[0], ratios[1], ratios[2])

    def to_dict(self) -> dict[str, Any]:
        """The policy as an ipolicy dict."""
        return {
            constants.ISPECS_MINMAX: [{constants.ISPECS_MIN: lo.to_dict(),
                                       constants.ISPECS_MAX: hi.to_dict()}
                                      for lo, hi in self.minmax],
            constants.ISPECS_STD: self.std.to_dict(),
            constants.IPOLICY_DTS: list(self.disk_templates),
            constants.IPOLICY_VCPU_RATIO: self.vcpu_ratio,
            constants.IPOLICY_SPINDLE_RATIO: self.spindle_ratio,
            constants.IPOLICY_MEMORY_RATIO: self.memory_ratio,
        }


@dataclasses.dataclass(frozen=True)
class InstanceSpec:
    """What the policy checks of an instance."""

    memory: int
    vcpus: int
    disk_sizes: tuple[int, ...]
    nic_count: int
    spindle_use: int
    disk_template: str


def _range_violations(spec: InstanceSpec, lo: ISpec, hi: ISpec) -> list[str]:
    checks = [(constants.ISPEC_MEM_SIZE, spec.memory),
              (constants.ISPEC_CPU_COUNT, spec.vcpus),
              (constants.ISPEC_DISK_COUNT, len(spec.disk_sizes)),
              (constants.ISPEC_NIC_COUNT, spec.nic_count)]
    # diskless instances carry no disk, hence neither size nor spindles
    if spec.disk_template != constants.DT_DISKLESS:
        checks.append((constants.ISPEC_SPINDLE_USE, spec.spindle_use))
        checks.extend((constants.ISPEC_DISK_SIZE, size) for size in spec.disk_sizes)
    else:
        lo = dataclasses.replace(lo, disk_count=0)
    low = lo.to_dict()
    high = hi.to_dict()
    out = []
    for key, val in checks:
        if not low[key] <= val <= high[key]:
            out.append(f"{key} value {val} is not in range [{low[key]}, {high[key]}]")
    return out


def spec_violations(policy: IPolicy, spec: InstanceSpec,
                    check_template: bool = True) -> list[str]:
    """The ways ``spec`` violates ``policy`` (empty when it complies).

    The spec must fit within one of the min/max pairs; the violations
    reported are those of the pair it misses least.
    """
    out: list[str] = []
    if check_template and spec.disk_template not in policy.disk_templates:
        out.append(f"Disk template {spec.disk_template} is not allowed (allowed:"
                   f" {', '.join(policy.disk_templates) or 'none'})")
    best: list[str] | None = None
    for lo, hi in policy.minmax:
        found = _range_violations(spec, lo, hi)
        if best is None or len(found) < len(best):
            best = found
        if not found:
            break
    return out + (best or [])


def max_vcpus(policy: IPolicy, cpus: float) -> int:
    """How many virtual CPUs a node with ``cpus`` physical CPUs may host."""
    return int(policy.vcpu_ratio * cpus)


def max_spindle_use(policy: IPolicy, spindles: int, exclusive: bool) -> float:
    """How much spindle use a node may host (its spindles when exclusive)."""
    return float(spindles) if exclusive else policy.spindle_ratio * spindles
